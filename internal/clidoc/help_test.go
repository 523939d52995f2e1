package clidoc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// This file checks that the commands and flags the docs print exist in the programs' --help.

// helpCmd is one command as its --help shows it.
type helpCmd struct {
	subs  []string        // "Available Commands" (and any other "... Commands:" list)
	flags map[string]bool // "--name" and "-x" of Flags and Global Flags; true: takes a value
}

var (
	flagLineRE = regexp.MustCompile(`^\s+(?:-(\S), )?--([A-Za-z0-9][A-Za-z0-9-]*)(?: ([A-Za-z0-9]+))?(?:\s{2,}|$)`)
	cmdLineRE  = regexp.MustCompile(`^\s+([a-z0-9][a-z0-9-]*)(?:\s|$)`)
)

// parseHelp reads cobra's --help text.
func parseHelp(text string) helpCmd {
	h := helpCmd{flags: map[string]bool{}}
	section := ""
	for _, l := range strings.Split(text, "\n") {
		if l != "" && !strings.HasPrefix(l, " ") {
			section = strings.TrimSpace(l)
			continue
		}
		switch {
		case strings.HasSuffix(section, "Commands:"):
			if m := cmdLineRE.FindStringSubmatch(l); m != nil {
				h.subs = append(h.subs, m[1])
			}
		case strings.HasSuffix(section, "Flags:"):
			if m := flagLineRE.FindStringSubmatch(l); m != nil {
				value := m[3] != ""
				h.flags["--"+m[2]] = value
				if m[1] != "" {
					h.flags["-"+m[1]] = value
				}
			}
		}
	}
	return h
}

// helpTree runs `bin PATH... --help` for every command of bin (but completion's and help's).
func helpTree(t *testing.T, bin string) map[string]helpCmd {
	t.Helper()
	tree := map[string]helpCmd{}
	var walk func(path []string)
	walk = func(path []string) {
		out, err := exec.Command(bin, append(slices.Clone(path), "--help")...).Output()
		if err != nil {
			t.Fatalf("%s %s --help: %v", bin, strings.Join(path, " "), err)
		}
		h := parseHelp(string(out))
		if len(h.flags) == 0 {
			t.Fatalf("%s %s --help shows no flags (not even --help): the parser does not read it:\n%s", bin, strings.Join(path, " "), out)
		}
		tree[strings.Join(path, " ")] = h
		for _, s := range h.subs {
			if len(path) == 0 && (s == "completion" || s == "help") {
				tree[s] = helpCmd{flags: map[string]bool{"--help": false, "-h": false}}
				continue
			}
			walk(append(slices.Clone(path), s))
		}
	}
	walk(nil)
	return tree
}

// mention is one command line of a program printed in the docs.
type mention struct {
	where string   // file:line
	args  []string // the words after the program's name, to the end of the command
}

var (
	codeSpanRE = regexp.MustCompile("`([^`]+)`")
	fenceRE    = regexp.MustCompile("^```+\\s*(\\S*)")
)

// mentions finds the command lines of program in a Markdown text: in `code spans`, and in
// sh and console blocks (console: the lines after "$ ").
func mentions(file, text, program string) []mention {
	progRE := regexp.MustCompile(`(?:^|[\s(])` + regexp.QuoteMeta(program) + `(?:\s+|$)`)
	var out []mention
	add := func(line int, s string) {
		for _, loc := range progRE.FindAllStringIndex(s, -1) {
			out = append(out, mention{where: fmt.Sprintf("%s:%d", file, line), args: commandWords(s[loc[1]:], program)})
		}
	}
	lang, inBlock := "", false
	for i, l := range strings.Split(text, "\n") {
		if m := fenceRE.FindStringSubmatch(l); m != nil {
			if inBlock {
				inBlock = false
			} else {
				inBlock, lang = true, m[1]
			}
			continue
		}
		switch {
		case inBlock && lang == "sh":
			add(i+1, shellCode(l))
		case inBlock && lang == "console":
			if cmd, ok := strings.CutPrefix(l, "$ "); ok {
				add(i+1, shellCode(cmd))
			}
		case !inBlock:
			for _, m := range codeSpanRE.FindAllStringSubmatch(l, -1) {
				add(i+1, m[1])
			}
		}
	}
	return out
}

// shellCode is a shell line without its comment (prose).
func shellCode(l string) string {
	if strings.HasPrefix(strings.TrimSpace(l), "#") {
		return ""
	}
	code, _, _ := strings.Cut(l, " #")
	return code
}

// commandWords are the words of a command line up to its end: a shell operator, a comment,
// an ellipsis ("more of the same") or the program's name again.
func commandWords(s, program string) []string {
	var words []string
	for _, w := range shellWords(s) {
		if w == program || strings.HasPrefix(w, "#") || w == "…" || w == "..." ||
			slices.Contains([]string{"&&", "||", "|", ";", ">", "<", ")", "2>&1"}, w) {
			break
		}
		w = strings.Trim(w, "[]")
		w = strings.TrimSuffix(w, ")")
		w = strings.TrimSuffix(w, ";")
		w = strings.TrimSuffix(w, ",")
		if w != "" {
			words = append(words, w)
		}
	}
	return words
}

// shellWords splits s into words as a shell would for quoting: a '…' or "…" span is part of
// one word, quotes removed ("--command 'apt-get -y install x'" is two words).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// check walks tree along m's words: each command word must be a subcommand shown in --help
// and each flag one of the flags shown for the command reached.
func check(tree map[string]helpCmd, program string, m mention) error {
	path := ""
	cmd := tree[path]
	positional := false
	for i := 0; i < len(m.args); i++ {
		w := m.args[i]
		if strings.HasPrefix(w, "-") && len(w) > 1 {
			name, _, hasValue := strings.Cut(w, "=")
			takes, ok := cmd.flags[name]
			if !ok {
				return fmt.Errorf("`%s %s`: %s has no flag %s in its --help", program, strings.Join(m.args, " "),
					strings.TrimSpace(program+" "+path), name)
			}
			if takes && !hasValue {
				i++ // its value
			}
			continue
		}
		if positional {
			continue
		}
		next := strings.TrimSpace(path + " " + w)
		if sub, ok := tree[next]; ok {
			path, cmd = next, sub
			continue
		}
		if len(cmd.subs) > 0 && regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(w) && !slices.Contains(placeholders, w) {
			return fmt.Errorf("`%s %s`: %s has no command %q in its --help (it has %s)", program, strings.Join(m.args, " "),
				strings.TrimSpace(program+" "+path), w, strings.Join(cmd.subs, ", "))
		}
		positional = true
	}
	return nil
}

// placeholders are lower-case words the docs use for an argument of a command that has
// subcommands too (none today).
var placeholders = []string{}

// build builds ./cmd/NAME of this module into dir.
func build(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return bin
}

// TestDocsMatchHelp: every `lbagent ...` and `lbadapter ...` command line that README.md and
// docs/*.md print (code spans, sh and console blocks) names commands and flags that the
// program's --help shows.
func TestDocsMatchHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds lbagent and lbadapter")
	}
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../../README.md"}, files...)
	dir := t.TempDir()
	for _, program := range []string{"lbagent", "lbadapter"} {
		tree := helpTree(t, build(t, dir, program))
		n := 0
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range mentions(strings.TrimPrefix(f, "../../"), string(b), program) {
				n++
				if err := check(tree, program, m); err != nil {
					t.Errorf("%s: %v", m.where, err)
				}
			}
		}
		if n < 10 {
			t.Errorf("found %d %s command lines in the docs; the extractor is broken", n, program)
		}
		t.Logf("%s: %d command lines checked against %d commands' --help", program, n, len(tree))
	}
}

func TestParseHelp(t *testing.T) {
	h := parseHelp(`Usage:
  lbadapter drain NODE [flags]

Available Commands:
  maintenance Switch this node's maintenance mode
  run         Run the agent

Flags:
  -h, --help               help for drain
      --no-wait            take the node out of rotation
      --timeout duration   give up waiting after this long (default 10m0s)

Global Flags:
  -c, --config string   cluster config file (default "/etc/lbadapter/cluster.ini")
`)
	if !slices.Equal(h.subs, []string{"maintenance", "run"}) {
		t.Errorf("subs %v", h.subs)
	}
	want := map[string]bool{"-h": false, "--help": false, "--no-wait": false, "--timeout": true, "-c": true, "--config": true}
	if len(h.flags) != len(want) {
		t.Errorf("flags %v; want %v", h.flags, want)
	}
	for f, v := range want {
		if got, ok := h.flags[f]; !ok || got != v {
			t.Errorf("flag %s: %v, %v; want takes a value = %v", f, got, ok, v)
		}
	}
}

func TestMentionsAndCheck(t *testing.T) {
	doc := "Run `lbagent db pause` or `lbagent.ini`, `lbagent_healthy`.\n\n```sh\n" +
		"sudo -u postgres lbagent db pause && touch /x   # then lbagent bogus here\n" +
		"lbagent status [-o json]\n# lbagent nothing\n```\n\n```console\n$ lbagent dbb\nlbagent output\n```\n" +
		"`lbagent run --check-confg` and `lbagent db status --port 5433 --user x` and `lbagent maintenance on|off` and `lbagent db …  lbagent certs …`\n"
	ms := mentions("doc.md", doc, "lbagent")
	var got []string
	for _, m := range ms {
		got = append(got, m.where+" "+strings.Join(m.args, " "))
	}
	want := []string{"doc.md:1 db pause", "doc.md:4 db pause", "doc.md:5 status -o json", "doc.md:10 dbb",
		"doc.md:13 run --check-confg", "doc.md:13 db status --port 5433 --user x", "doc.md:13 maintenance on|off",
		"doc.md:13 db", "doc.md:13 certs"}
	if !slices.Equal(got, want) {
		t.Fatalf("mentions:\n%q\nwant\n%q", got, want)
	}
	tree := map[string]helpCmd{
		"":            {subs: []string{"db", "maintenance", "run", "status", "certs"}, flags: map[string]bool{"--help": false}},
		"db":          {subs: []string{"pause", "status"}, flags: map[string]bool{"--help": false, "--port": true, "--user": true}},
		"db pause":    {flags: map[string]bool{"--help": false, "--port": true, "--user": true}},
		"db status":   {flags: map[string]bool{"--help": false, "--port": true, "--user": true}},
		"maintenance": {flags: map[string]bool{"--help": false}},
		"run":         {flags: map[string]bool{"--help": false, "--check-config": false}},
		"status":      {flags: map[string]bool{"--help": false, "-o": true, "--output": true}},
		"certs":       {flags: map[string]bool{"--help": false}},
	}
	var errs []string
	for _, m := range ms {
		if err := check(tree, "lbagent", m); err != nil {
			errs = append(errs, m.where+" "+err.Error())
		}
	}
	wantErrs := []string{
		"doc.md:10 `lbagent dbb`: lbagent has no command \"dbb\" in its --help (it has db, maintenance, run, status, certs)",
		"doc.md:13 `lbagent run --check-confg`: lbagent run has no flag --check-confg in its --help",
	}
	if !slices.Equal(errs, wantErrs) {
		t.Errorf("errors:\n%q\nwant\n%q", errs, wantErrs)
	}
}

func TestShellWords(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"upgrade --command 'apt-get -y install x' --dry-run", []string{"upgrade", "--command", "apt-get -y install x", "--dry-run"}},
		{`a "b c"d  e`, []string{"a", "b cd", "e"}},
		{"a ''", []string{"a", ""}},
	} {
		if got := shellWords(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("shellWords(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
