package watch

import (
	"errors"
	"testing"
)

// TestNext feeds one node's agent answers through the state machine, as HAProxy's
// agent-check would read them, with fall 2 and rise 2.
func TestNext(t *testing.T) {
	w := &Watcher{o: Options{Fall: 2, Rise: 2}}
	unreachable := errors.New("unreachable: connect: connection refused")
	type step struct {
		answer string
		err    error
		down   bool
		pct    int
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"down needs fall polls, up needs rise", []step{
			{answer: "up\n", pct: 100}, {answer: "down #ServerConf is not available\n", pct: 100},
			{answer: "down #ServerConf is not available\n", down: true, pct: 100},
			{answer: "up\n", down: true, pct: 100}, {answer: "up\n", pct: 100}}},
		{"unreachable and garbage are failed polls", []step{
			{err: unreachable, pct: 100}, {answer: "\x00\xff garbage\n", down: true, pct: 100},
			{answer: "", down: true, pct: 100}, {answer: "up", down: true, pct: 100}, // no line end: incomplete
			{answer: "up\n", down: true, pct: 100}, {answer: "up\n", pct: 100}}},
		{"drain is at once, ready lifts it at once", []step{
			{answer: "drain\n", down: true, pct: 100}, {answer: "drain\n", down: true, pct: 100},
			{answer: "up ready\n", pct: 100}}},
		{"maint, then up without ready rise times", []step{
			{answer: "maint\n", down: true, pct: 100}, {answer: "up\n", down: true, pct: 100},
			{answer: "up\n", pct: 100}}},
		{"weights", []step{
			{answer: "up 50%\n", pct: 50}, {answer: "up\n", pct: 50}, {answer: "up 0%\n", down: true, pct: 0},
			{answer: "up 100%\n", pct: 100}, {answer: "up 250%\n", pct: 100}}},
		{"a bad weight is a failed poll", []step{
			{answer: "up -5%\n", pct: 100}, {answer: "up x%\n", down: true, pct: 100}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := nodeState{healthy: true, pct: 100}
			for i, st := range tt.steps {
				var answer []byte
				if st.err == nil {
					answer = []byte(st.answer)
				}
				s = w.next(s, answer, st.err)
				if s.down() != st.down || s.pct != st.pct {
					t.Fatalf("step %d (%q, %v): got down %v pct %d (%+v); want down %v pct %d",
						i, st.answer, st.err, s.down(), s.pct, s, st.down, st.pct)
				}
			}
		})
	}
}
