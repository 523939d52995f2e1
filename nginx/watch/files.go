package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/xroad-lb/lbkit/lbadapters"
	"github.com/xroad-lb/lbkit/nginx"
)

// apply renders every servers file from the nodes' states and applies the changed ones, one
// nginx at a time.
func (w *Watcher) apply(ctx context.Context) {
	groups := map[nginx.Instance][]Upstream{}
	var order []nginx.Instance
	for _, u := range w.ups {
		if _, ok := groups[u.Nginx]; !ok {
			order = append(order, u.Nginx)
		}
		groups[u.Nginx] = append(groups[u.Nginx], u)
	}
	for _, in := range order {
		if err := w.applyNginx(ctx, in, groups[in]); err != nil {
			w.log(Event{Err: err})
		}
	}
}

func (w *Watcher) applyNginx(ctx context.Context, in nginx.Instance, ups []Upstream) error {
	var changes []nginx.Change
	var names []string
	for _, u := range ups {
		unlock, err := nginx.Lock(u.File)
		if err != nil {
			return fmt.Errorf("[balancer %q]: %w", u.Name, err)
		}
		defer unlock()
		f, old, err := nginx.ReadFile(u.File)
		if err != nil {
			return fmt.Errorf("[balancer %q]: %w", u.Name, err)
		}
		w.render(u, f)
		data := f.Bytes()
		if !bytes.Equal(old, data) {
			if w.refused[u.File] == string(data) {
				continue // nginx -t refused exactly this; said so once
			}
			changes = append(changes, nginx.Change{Path: u.File, Old: old, New: data})
			names = append(names, u.Name)
		}
	}
	if len(changes) == 0 {
		return nil
	}
	// A change once decided is carried through (bounded) even when the watcher is being
	// stopped: cancelling nginx -t half-way would put the old file back behind the log's back.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lbadapters.DefaultNginxCallTimeout)
	defer cancel()
	if err := in.ApplyAll(ctx, changes); err != nil {
		if errors.Is(err, nginx.ErrRefused) {
			for _, c := range changes {
				w.refused[c.Path] = string(c.New)
			}
			return fmt.Errorf("%v: %w (files restored, nginx not reloaded; retried when the change differs)", names, err)
		}
		return fmt.Errorf("%v: %w", names, err)
	}
	for _, c := range changes {
		delete(w.refused, c.Path)
	}
	for _, n := range names {
		w.log(Event{Upstream: n, Change: "servers file changed, nginx -t passed, nginx reloaded"})
	}
	return nil
}

// render sets the nodes' server lines of one file: the watcher's down with the agent's
// reason, and while any node runs below 100%, every node's weight in hundredths.
func (w *Watcher) render(u Upstream, f *nginx.File) {
	scaled := false
	for _, st := range w.state {
		scaled = scaled || (st.pct > 0 && st.pct < 100)
	}
	for i, n := range w.nodes {
		s := f.Find(n.Address, u.Port)
		if s == nil {
			key := u.File + " " + n.Name
			if !w.warned[key] {
				w.warned[key] = true
				w.log(Event{Err: fmt.Errorf("[balancer %q]: servers file %s has no line for node %s (%s): not watched there",
					u.Name, u.File, n.Name, net.JoinHostPort(n.Address, strconv.Itoa(u.Port)))})
			}
			continue
		}
		st := w.state[i]
		// A node already down keeps the reason it went down for: a changing answer while
		// down rewrites nothing.
		if was := s.Agent; !was || !st.down() {
			s.Reason = ""
			if st.down() {
				s.Reason = st.reason
			}
		}
		s.Agent = st.down()
		if scaled {
			s.Scale(max(st.pct, 1))
		} else {
			s.Scale(-1)
		}
	}
}
