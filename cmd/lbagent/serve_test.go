package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/xroad-lb/lbkit/sync/confsync"
)

// lbagent sync serve prints the ready line, then one quoted path per change (none for
// excluded paths), and ends when its stdin closes (the SSH session ended).
func TestSyncServe(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "signer"), 0o755); err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	cmd := newSyncCmd()
	cmd.SetArgs([]string{"serve", dir, "*.tmp"})
	cmd.SetIn(inR)
	cmd.SetOut(outW)
	done := make(chan error, 1)
	go func() { done <- cmd.Execute(); outW.Close() }()
	lines := bufio.NewReader(outR)
	if l, err := lines.ReadString('\n'); err != nil || l != confsync.ServeReady+"\n" {
		t.Fatalf("first line %q, %v; want the ready line", l, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "signer", "x.tmp"), nil, 0o644); err != nil { // excluded: no notice
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "signer", "keyconf.xml"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := lines.ReadString('\n'); err != nil || l != `"signer/keyconf.xml"`+"\n" {
		t.Fatalf("notice %q, %v; want \"signer/keyconf.xml\"", l, err)
	}
	inW.Close()
	go func() { _, _ = io.Copy(io.Discard, lines) }() // later notices of the same write
	if err := <-done; err != nil {
		t.Errorf("serve after stdin closed: %v", err)
	}
}
