// Command mkdeb builds the lbkit Debian package (lbkit_<version>_<arch>.deb) with nfpm:
// the two programs, their systemd units, logrotate, the Lua scripts, example configurations,
// man pages and bash/zsh completion generated from the cobra commands. "make deb" runs it.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

func main() {
	var o options
	flag.StringVar(&o.Version, "version", "", "package version (a git describe string is turned into a Debian one: v1.2.0 -> 1.2.0, 6a4e393 -> 0.0~git6a4e393)")
	flag.StringVar(&o.Arch, "arch", "amd64", "Debian architecture of the binaries: amd64 or arm64")
	flag.StringVar(&o.BinDir, "bin", "", "directory holding lbagent and lbadapter built for -arch (default: build them from -src with go build)")
	flag.StringVar(&o.SrcDir, "src", ".", "the lbkit source tree (deploy/, examples/, docs/, nginx/lua/, haproxy/lua/)")
	flag.StringVar(&o.OutDir, "out", "dist", "directory the .deb is written to")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkdeb -version V [-arch amd64|arm64] [-bin DIR] [-src DIR] [-out DIR]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "mkdeb: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	path, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

type options struct {
	Version, Arch, BinDir, SrcDir, OutDir string
}

const (
	name      = "lbkit"
	docDir    = "/usr/share/doc/lbkit"
	unitDir   = "/lib/systemd/system" // Debian 12 ships units under /lib (usrmerge moratorium)
	maintName = "lbkit maintainers <lbkit@xroad-lb.invalid>"
)

var programs = []string{"lbagent", "lbadapter"}

// build writes the package into o.OutDir and returns its path.
func build(o options) (string, error) {
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return "", fmt.Errorf("-arch %q: want amd64 or arm64", o.Arch)
	}
	version, err := debVersion(o.Version)
	if err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	if o.BinDir == "" {
		o.BinDir = filepath.Join(stage, "bin-"+o.Arch)
		if err := goBuild(o.SrcDir, o.Arch, o.Version, o.BinDir); err != nil {
			return "", err
		}
	}
	// Man pages and completion come from programs that run here.
	docBin := o.BinDir
	if o.Arch != runtime.GOARCH {
		docBin = filepath.Join(stage, "bin-"+runtime.GOARCH)
		if err := goBuild(o.SrcDir, runtime.GOARCH, o.Version, docBin); err != nil {
			return "", err
		}
	}

	contents, err := contentsOf(o, docBin, stage, version)
	if err != nil {
		return "", err
	}
	src := func(p string) string { return filepath.Join(o.SrcDir, p) }
	info := &nfpm.Info{
		Name:          name,
		Arch:          o.Arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none",
		Release:       "1",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintName,
		Homepage:      "https://github.com/xroad-lb/lbkit",
		Description: "load-balancer support for X-Road security server clusters\n" +
			"lbagent runs on every node of an X-Road security server cluster: the X-Road\n" +
			"compatible health check port, maintenance mode, the HAProxy agent-check port,\n" +
			"serverconf replication and configuration sync. lbadapter drains, enables and\n" +
			"shows the nodes on HAProxy and AWS ELBv2 balancers.",
		Overridables: nfpm.Overridables{
			Recommends: []string{"rsync", "openssh-client"},
			Contents:   contents,
			Scripts: nfpm.Scripts{
				PostInstall: src("deploy/debian/postinst"),
				PreRemove:   src("deploy/debian/prerm"),
				PostRemove:  src("deploy/debian/postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(o.OutDir, fmt.Sprintf("%s_%s-1_%s.deb", name, version, o.Arch))
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return "", fmt.Errorf("package %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return out, nil
}

var gitHash = regexp.MustCompile(`^[0-9a-f]{7,40}(-dirty)?$`)

var gitDescribe = regexp.MustCompile(`^v?([0-9][0-9A-Za-z.+~]*)(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)

// debVersion turns a git describe string into a Debian upstream version.
func debVersion(v string) (string, error) {
	switch {
	case v == "":
		return "", errors.New("-version is required")
	case gitHash.MatchString(v): // no tag yet: git describe --always gives the hash
		return "0.0~git" + strings.ReplaceAll(v, "-", "+"), nil
	case gitDescribe.MatchString(v):
		m := gitDescribe.FindStringSubmatch(v)
		out := m[1]
		if m[2] != "" {
			out += "+git" + m[2] + "." + m[3]
		}
		if m[4] != "" {
			out += "+dirty"
		}
		return out, nil
	}
	return "", fmt.Errorf("-version %q: not a version (want e.g. 1.2.0, v1.2.0-3-gabc1234 or abc1234)", v)
}

// contentsOf lists the package's files; generated ones are written under stage.
func contentsOf(o options, docBin, stage, version string) (files.Contents, error) {
	var c files.Contents
	add := func(src, dst, typ string, mode os.FileMode) {
		c = append(c, &files.Content{Source: src, Destination: dst, Type: typ,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode}})
	}
	for _, p := range programs {
		add(filepath.Join(o.BinDir, p), "/usr/bin/"+p, "", 0o755)
	}
	srcFiles, err := sourceFiles(o.SrcDir)
	if err != nil {
		return nil, err
	}
	for _, f := range srcFiles {
		add(f.src, f.dst, f.typ, 0o644)
	}

	changelog := filepath.Join(stage, "changelog.Debian.gz")
	if err := writeGzip(changelog, []byte(fmt.Sprintf("%s (%s-1) unstable; urgency=medium\n\n  * Built from the lbkit source tree.\n\n -- %s  %s\n",
		name, version, maintName, time.Now().UTC().Format(time.RFC1123Z)))); err != nil {
		return nil, err
	}
	add(changelog, docDir+"/changelog.Debian.gz", "", 0o644)

	generated, err := generateDocs(docBin, stage)
	if err != nil {
		return nil, err
	}
	for _, g := range generated {
		add(g.src, g.dst, "", 0o644)
	}
	return c, nil
}

type genFile struct{ src, dst, typ string }

// sourceFiles are the package's files taken from the source tree. Units, examples and Lua
// scripts are found by glob, so parts added to the tree later (nginx/lua, lbadapter-watch)
// are packaged as they appear. Logrotate files are conffiles, never overwritten once the
// admin changed them.
func sourceFiles(src string) ([]genFile, error) {
	sets := []struct {
		pattern, dst, typ string
		min               int
	}{
		{"deploy/systemd/*.service", unitDir, "", 1},
		{"deploy/logrotate/*", "/etc/logrotate.d", files.TypeConfigNoReplace, 1},
		{"examples/*.ini", docDir + "/examples", "", 1},
		{"haproxy/examples/*.cfg", docDir + "/examples", "", 0},
		{"nginx/examples/*.conf", docDir + "/examples", "", 0},
		{"nginx/lua/*.lua", "/usr/share/lbkit/lua", "", 0},
		{"haproxy/lua/*.lua", "/usr/share/lbkit/haproxy", "", 0},
		{"docs/*.md", docDir, "", 1},
		{"README.md", docDir, "", 1},
		{"deploy/debian/copyright", docDir, "", 1},
	}
	var out []genFile
	for _, s := range sets {
		m, err := filepath.Glob(filepath.Join(src, s.pattern))
		if err != nil {
			return nil, err
		}
		if len(m) < s.min {
			return nil, fmt.Errorf("%s: no file in %s", s.pattern, src)
		}
		sort.Strings(m)
		for _, f := range m {
			out = append(out, genFile{f, s.dst + "/" + filepath.Base(f), s.typ})
		}
	}
	return out, nil
}

// generateDocs runs the programs' hidden "man DIR" command and cobra's "completion bash|zsh".
func generateDocs(bin, stage string) ([]genFile, error) {
	var out []genFile
	for _, p := range programs {
		exe := filepath.Join(bin, p)
		manDir := filepath.Join(stage, "man-"+p)
		if _, err := runProgram(exe, "man", manDir); err != nil {
			return nil, err
		}
		pages, err := filepath.Glob(filepath.Join(manDir, "*.1"))
		if err != nil || len(pages) == 0 {
			return nil, fmt.Errorf("%s man: no page written", exe)
		}
		sort.Strings(pages)
		for _, page := range pages {
			text, err := os.ReadFile(page)
			if err != nil {
				return nil, err
			}
			gz := page + ".gz"
			if err := writeGzip(gz, text); err != nil {
				return nil, err
			}
			out = append(out, genFile{gz, "/usr/share/man/man1/" + filepath.Base(gz), ""})
		}
		for _, sh := range []struct{ shell, dst string }{
			{"bash", "/usr/share/bash-completion/completions/" + p},
			{"zsh", "/usr/share/zsh/vendor-completions/_" + p},
		} {
			script, err := runProgram(exe, "completion", sh.shell)
			if err != nil {
				return nil, err
			}
			f := filepath.Join(stage, sh.shell+"-"+p)
			if err := os.WriteFile(f, script, 0o644); err != nil {
				return nil, err
			}
			out = append(out, genFile{f, sh.dst, ""})
		}
	}
	return out, nil
}

// goBuild builds the programs for linux/arch as position-independent executables without
// cgo: no shared library needed, the same build for amd64 and arm64.
func goBuild(src, arch, version, dir string) error {
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-buildmode=pie",
		"-ldflags", "-s -w -X main.version="+version, "-o", dir+"/", "./cmd/lbagent", "./cmd/lbadapter")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %w: %s", arch, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func runProgram(exe string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", exe, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// writeGzip compresses at the best level without a name or time in the header, as
// Debian wants man pages and changelogs (gzip -9n).
func writeGzip(path string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, bytes.NewReader(data)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
