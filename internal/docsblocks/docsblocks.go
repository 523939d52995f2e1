// Package docsblocks finds the config blocks the project prints (fenced code blocks of its
// Markdown and the shipped example files) and tells which file each one is, so a test can
// load every one of them exactly as printed.
package docsblocks

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Kind is what a block is, i.e. which loader takes it.
type Kind string

// The kinds of blocks. Every fenced block must have a language; the ones in NotConfig are
// shown output or commands and are not loaded.
const (
	LBAgentINI   Kind = "lbagent.ini"   // lbagent's settings: conf.d/lbagent.ini (or node.ini)
	NodeINI      Kind = "node.ini"      // X-Road's conf.d/node.ini: [node] type, plus lbagent's sections
	LocalINI     Kind = "local.ini"     // X-Road's conf.d/local.ini (or any conf.d/*.ini): [proxy] ...
	ClusterINI   Kind = "cluster.ini"   // lbadapter's cluster config
	HAProxy      Kind = "haproxy.cfg"   // HAProxy configuration
	Nginx        Kind = "nginx.conf"    // nginx configuration
	NginxServers Kind = "nginx servers" // a servers file kept by lbadapter, included by an upstream
	JSON         Kind = "json"          // a JSON document (e.g. an IAM policy)
	NotConfig    Kind = "not a config"  // sh, console, text: commands and output, not loaded
	Unknown      Kind = "unknown"       // cannot tell: an error for the test
	Unlabelled   Kind = "no language"   // a fence without a language: an error for the test
	Lua          Kind = "lua"           // Lua source
	Unsupported  Kind = "unsupported"   // a language this package does not know
)

// NotConfigLangs are the fence languages of blocks that are not configuration.
var NotConfigLangs = []string{"sh", "console", "text"}

// Block is one printed config block.
type Block struct {
	File     string // slash-separated path relative to the repository root
	Line     int    // 1-based line of the block's first line of text (1 for a whole file)
	Lang     string // the fence's language (first word of the info string); "" for whole files
	Text     string // exactly as printed
	Kind     Kind
	Fragment bool   // marked `<!-- docs-test: fragment -->`: completed by the test before loading
	Skip     string // the reason of a `<!-- docs-test: skip: REASON -->` marker; such a block is not loaded
}

// Where is file:line, for error messages.
func (b Block) Where() string { return fmt.Sprintf("%s:%d", b.File, b.Line) }

// Markers, on the line just before a fence (blank lines between are allowed).
const (
	FragmentMarker = "<!-- docs-test: fragment -->"
	skipPrefix     = "<!-- docs-test: skip:"
)

var fence = regexp.MustCompile("^```+")

// Markdown returns the fenced code blocks of a Markdown file.
func Markdown(file, text string) ([]Block, error) {
	var out []Block
	lines := strings.Split(text, "\n")
	marker := ""
	markerLine := 0
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "<!-- docs-test:") {
			marker, markerLine = trimmed, i+1
			continue
		}
		f := fence.FindString(l)
		if f == "" {
			if trimmed != "" {
				marker = ""
			}
			continue
		}
		info := strings.Fields(strings.TrimPrefix(l, f))
		b := Block{File: file, Line: i + 2}
		if len(info) > 0 {
			b.Lang = info[0]
		}
		switch {
		case marker == FragmentMarker:
			b.Fragment = true
		case strings.HasPrefix(marker, skipPrefix):
			b.Skip = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(marker, skipPrefix), "-->"))
			if b.Skip == "" {
				return nil, fmt.Errorf("%s:%d: skip marker without a reason", file, markerLine)
			}
		case marker != "":
			return nil, fmt.Errorf("%s:%d: unknown marker %q (want %q or \"%s REASON -->\")", file, markerLine, marker, FragmentMarker, skipPrefix)
		}
		marker = ""
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if strings.HasPrefix(lines[i], f) && strings.TrimSpace(strings.TrimLeft(lines[i], "`")) == "" {
				closed = true
				break
			}
			body = append(body, lines[i])
		}
		if !closed {
			return nil, fmt.Errorf("%s:%d: code block not closed", file, b.Line-1)
		}
		b.Text = strings.Join(body, "\n") + "\n"
		if len(body) == 0 {
			b.Text = ""
		}
		b.Kind = Classify(b.Lang, b.Text)
		out = append(out, b)
	}
	return out, nil
}

// Example returns a shipped example file as a block, classified by its name.
func Example(file, text string) Block {
	b := Block{File: file, Line: 1, Text: text}
	switch ext := filepath.Ext(file); ext {
	case ".ini":
		b.Kind = Classify("ini", text)
	case ".cfg":
		b.Kind = HAProxy
	case ".conf":
		b.Kind = Nginx
	case ".servers":
		b.Kind = NginxServers
	case ".json":
		b.Kind = JSON
	case ".lua":
		b.Kind = Lua
	default:
		b.Kind = Unknown
	}
	return b
}

// Classify tells what a fenced block of language lang is.
func Classify(lang, text string) Kind {
	switch lang {
	case "":
		return Unlabelled
	case "ini", "cfg", "conf":
		if lang != "ini" && looksHAProxy(text) {
			return HAProxy
		}
		if lang == "conf" && looksNginx(text) {
			return Nginx
		}
		return classifyINI(text)
	case "haproxy":
		return HAProxy
	case "nginx":
		if looksServersFile(text) {
			return NginxServers
		}
		return Nginx
	case "json":
		return JSON
	case "lua":
		return Lua
	}
	if slices.Contains(NotConfigLangs, lang) {
		return NotConfig
	}
	return Unsupported
}

// Guess names the kind an unlabelled block looks like ("" when it looks like none), for the
// error message that asks for a language.
func Guess(text string) Kind {
	switch {
	case looksHAProxy(text):
		return HAProxy
	case looksServersFile(text):
		return NginxServers
	case looksNginx(text):
		return Nginx
	}
	if k := classifyINI(text); k != Unknown {
		return k
	}
	return ""
}

// ourSections are the sections of lbagent.ini / node.ini that belong to lbagent.
var ourSections = []string{"lbagent", "agent-check", "push", "replication", "sync"}

var (
	sectionRE  = regexp.MustCompile(`^\s*\[\s*([A-Za-z0-9_.-]+)(\s+[^\]]*)?\]`)
	fileNameRE = regexp.MustCompile(`\b(cluster|lbagent|node|local)\.ini\b`)
)

// classifyINI: a file named in the leading comments wins ("; /etc/lbadapter/cluster.ini");
// else [balancer]/[node "NAME"] is a cluster config, [node] X-Road's node.ini, [proxy]
// X-Road's local.ini, and lbagent's own sections lbagent.ini.
func classifyINI(text string) Kind {
	sc := bufio.NewScanner(strings.NewReader(text))
	var sections []string
	named := false
	leading := true
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if leading && (strings.HasPrefix(l, ";") || strings.HasPrefix(l, "#")) {
			if m := fileNameRE.FindStringSubmatch(l); m != nil {
				return map[string]Kind{"cluster": ClusterINI, "lbagent": LBAgentINI, "node": NodeINI, "local": LocalINI}[m[1]]
			}
			continue
		}
		if m := sectionRE.FindStringSubmatch(l); m != nil {
			leading = false
			sections = append(sections, strings.ToLower(m[1]))
			if m[1] == "node" && strings.TrimSpace(m[2]) != "" {
				named = true
			}
		} else if l != "" {
			leading = false
		}
	}
	switch {
	case len(sections) == 0:
		return Unknown
	case slices.Contains(sections, "balancer") || named:
		return ClusterINI
	case slices.Contains(sections, "node"):
		return NodeINI
	case slices.Contains(sections, "proxy"):
		return LocalINI
	}
	for _, s := range sections {
		if slices.Contains(ourSections, s) {
			return LBAgentINI
		}
	}
	return Unknown
}

var (
	haproxySectionRE = regexp.MustCompile(`(?m)^(global|defaults|frontend|backend|listen)(\s|$)`)
	nginxRE          = regexp.MustCompile(`(?m)^\s*(events|http|stream|server|upstream)\s*\{`)
	serverLineRE     = regexp.MustCompile(`^server\s+\S+(\s+[^;#]*)?;`)
)

func looksHAProxy(text string) bool { return haproxySectionRE.MatchString(text) }
func looksNginx(text string) bool   { return nginxRE.MatchString(text) }

// looksServersFile: only `server ADDR ...;` lines and comments.
func looksServersFile(text string) bool {
	servers := 0
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case serverLineRE.MatchString(l):
			servers++
		default:
			return false
		}
	}
	return servers > 0
}

// Sources are where the project prints config: README.md, docs/*.md and the example folders
// (every file in them is an example).
var Sources = struct{ Markdown, Examples []string }{
	Markdown: []string{"README.md", "docs/*.md"},
	Examples: []string{"examples", "haproxy/examples", "nginx/examples"},
}

// Collect reads every block under the repository root: the fenced blocks of the Markdown
// files and the example files.
func Collect(root string) ([]Block, error) {
	var out []Block
	for _, pat := range Sources.Markdown {
		paths, err := filepath.Glob(filepath.Join(root, pat))
		if err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("docsblocks: no %s under %s", pat, root)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			rel, _ := filepath.Rel(root, p)
			blocks, err := Markdown(filepath.ToSlash(rel), string(b))
			if err != nil {
				return nil, err
			}
			out = append(out, blocks...)
		}
	}
	for _, dir := range Sources.Examples {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(root, dir, e.Name()))
			if err != nil {
				return nil, err
			}
			out = append(out, Example(dir+"/"+e.Name(), string(b)))
		}
	}
	return out, nil
}
