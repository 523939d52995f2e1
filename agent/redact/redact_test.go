package redact

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// hostile passwords: quotes, spaces, backslashes, "password=" inside the password.
var hostile = []string{
	`pa ss'word`, `a"b c`, `back\slash\`, `x password=y z`, `'; DROP ROLE x; --`, `ünï cödé €`, `%41%42`,
}

func TestEveryFormIsMasked(t *testing.T) {
	for _, pw := range hostile {
		var r Redactor
		r.Add(pw)
		j, _ := json.Marshal("cannot parse `host=h password=" + pw + " user=u`: failed")
		conn := "password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pw) + "'"
		cj, _ := json.Marshal(conn)
		for _, text := range []string{
			"failed: " + pw + " rest",
			string(j),
			conn,
			string(cj),
			"postgres://u:" + url.QueryEscape(pw) + "@h/db",
			"postgres://u:" + url.PathEscape(pw) + "@h/db",
		} {
			out := r.String(text)
			if strings.Contains(out, pw) || !strings.Contains(out, Mask) {
				t.Errorf("password %q in %q: got %q", pw, text, out)
			}
			if b := r.Bytes([]byte(text)); string(b) != out {
				t.Errorf("Bytes and String differ: %q vs %q", b, out)
			}
		}
	}
}

// TestPasswordSettingMasked: pgx masks a password in its parse errors only up to the first
// space; the rest of the value is masked here, whatever the secret set holds.
func TestPasswordSettingMasked(t *testing.T) {
	var r Redactor // knows no secret
	for _, tt := range []struct{ in, want string }{
		{"cannot parse `host=h user=u password=xxxxx c' sslmode=bogus`: failed",
			"cannot parse `host=h user=u password=[redacted] sslmode=bogus`: failed"},
		{"{\"detail\":\"cannot parse `host=h password=xxxxx b c`: x\"}",
			"{\"detail\":\"cannot parse `host=h password=[redacted]`: x\"}"},
		{"{\"detail\":\"password=a b c\"}", "{\"detail\":\"password=[redacted]\"}"},
		{"password=abc def", "password=[redacted]"},
		{"no secret here", "no secret here"},
	} {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("%q: got %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriterAndNoSecrets(t *testing.T) {
	var r Redactor
	if got := r.String("nothing to hide"); got != "nothing to hide" {
		t.Fatalf("empty redactor changed the text: %q", got)
	}
	r.Add("abc") // too short to mask everywhere
	if got := r.String("abcdef"); got != "abcdef" {
		t.Fatalf("a %d-byte secret masked ordinary text: %q", len("abc"), got)
	}
	r.Add("s3cr3t pw")
	var buf bytes.Buffer
	w := r.Writer(&buf)
	n, err := w.Write([]byte(`{"msg":"connect with s3cr3t pw failed"}` + "\n"))
	if err != nil || n != len(`{"msg":"connect with s3cr3t pw failed"}`)+1 {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if strings.Contains(buf.String(), "s3cr3t") {
		t.Fatalf("writer let the secret through: %s", buf.String())
	}
}
