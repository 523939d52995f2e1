package units

import "testing"

func TestBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0B"}, {1023, "1023B"}, {1024, "1.0kB"}, {1536, "1.5kB"}, {16 << 20, "16.0MB"}, {5 << 30, "5.0GB"},
	} {
		if got := Bytes(tt.n); got != tt.want {
			t.Errorf("Bytes(%d) = %q; want %q", tt.n, got, tt.want)
		}
	}
}

func TestSeconds(t *testing.T) {
	for _, tt := range []struct {
		s    float64
		want string
	}{
		{0, "0s"}, {0.4, "0s"}, {1.6, "2s"}, {242.4, "4m2s"}, {330, "5m30s"},
	} {
		if got := Seconds(tt.s); got != tt.want {
			t.Errorf("Seconds(%v) = %q; want %q", tt.s, got, tt.want)
		}
	}
}
