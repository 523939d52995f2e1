package confsync

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/jonboulle/clockwork"
)

// Result describes one pass.
type Result struct {
	Start    time.Time
	Duration time.Duration
	Items    []Item    // what changed, rsync itemize style
	Refused  []Refusal // remote entries not copied because they are unsafe
	Changes  int       // entries created, updated, deleted or re-attributed
	Received int64     // payload bytes of the fetched files
	NetRead  int64     // bytes read from the network during the pass (SSH included)
	NetSent  int64     // bytes written to the network during the pass
	Total    int64     // total size of the primary's regular files (after excludes)
	Files    int       // entries on the primary (after excludes)
	FullList bool      // the primary's whole tree was listed (else only changed directories)
	Listed   int       // directories listed on the primary (READDIR)
	Checked  int       // directories and racy files only checked for changes (LSTAT)
	Verified int       // racy files fetched again and compared by content (see racy.go)
	Skipped  []Skip    // entries the primary could not read (or that vanished); the rest was applied
	// Recovered: this pass first completed a commit that a crashed process left.
	Recovered bool
}

// Skip is an entry of the primary that a pass could not read (permission denied, or gone
// between listing and reading). Its local copy, if any, is left as it is.
type Skip struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// notifiedFullScans: while change notices arrive, a full listing of the primary runs every
// this many full-scan intervals (a minute by default) instead of every one.
const notifiedFullScans = 6

// fullLocalWalk bounds how long local edits made in place can go unnoticed.
const fullLocalWalk = time.Minute

// Syncer runs passes from the primary into the target over one kept SSH connection.
// It is not safe for concurrent use; Worker serialises it.
type Syncer struct {
	cfg       Config
	target    string
	stateDir  string // this target's directory below cfg.StateDir
	ex        *Excludes
	keepOwner bool
	sess      *session
	local     localCache
	remote    remoteCache
	clock     clockwork.Clock

	// racy holds the files to check by content (see racy.go), as of the remote tree
	// racyGen; saved is the set last written to the target (nil until loaded from it at
	// the first pass).
	racy, saved map[string]bool
	racyGen     uint64

	// adjusted is the remote tree of generation adjGen with owners mapped and special
	// bits dropped (see adjust).
	adjusted Tree
	adjGen   uint64

	notify *notices // change notices from the primary, when it runs lbagent sync serve
}

// NewSyncer validates cfg and returns a syncer; it does not connect yet.
func NewSyncer(cfg Config) (*Syncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	target, _ := cleanTarget(cfg.Target)
	ex, _ := NewExcludes(cfg.Excludes)
	if cfg.Parallel < 1 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.FullScan <= 0 {
		cfg.FullScan = DefaultFullScan
	}
	return &Syncer{cfg: cfg, target: target, stateDir: stateDirFor(cfg.StateDir, target), ex: ex,
		keepOwner: os.Geteuid() == 0, clock: clockwork.NewRealClock(),
		notify: newNotices(),
		local:  localCache{fullEvery: fullLocalWalk},
		remote: remoteCache{fullEvery: cfg.FullScan, settle: remoteSettle}}, nil
}

// Connected reports whether the SSH connection is open.
func (s *Syncer) Connected() bool { return s.sess != nil }

// Wake receives a value when the primary noticed a change (lbagent sync serve): run a
// pass now instead of at the next interval.
func (s *Syncer) Wake() <-chan struct{} { return s.notify.wake }

// Close drops the SSH connection; the next pass reconnects and lists the whole primary.
func (s *Syncer) Close() error {
	s.sess.close()
	s.sess = nil
	s.remote.invalidate()
	return nil
}

// Recover completes a commit a crashed process left (see journal.go), under the target's lock.
func (s *Syncer) Recover() (bool, error) {
	st, err := openState(s.stateDir)
	if err != nil {
		return false, err
	}
	defer st.close()
	if err := st.tryLock(s.target); err != nil {
		return false, err
	}
	defer st.unlock()
	done, err := recoverTarget(s.target, st, s.keepOwner)
	if done {
		s.local.invalidate()
	}
	return done, err
}

// Pass runs one pass: list the primary's tree (or only its changed directories, see
// remoteCache), compare it with the target, check racy files by content (see racy.go),
// stage every changed file, then commit them all at once. A pass that fails leaves the target as it
// was. The connection is kept for the next pass, or dropped after an error.
func (s *Syncer) Pass(ctx context.Context) (res Result, err error) {
	res.Start = s.clock.Now()
	defer func() { res.Duration = s.clock.Now().Sub(res.Start) }()
	st, err := openState(s.stateDir)
	if err != nil {
		return res, err
	}
	defer st.close()
	if err := st.tryLock(s.target); err != nil {
		return res, err
	}
	defer st.unlock()
	// Before anything reads the tree: complete a commit a crashed process left.
	if res.Recovered, err = recoverTarget(s.target, st, s.keepOwner); err != nil {
		return res, err
	}
	if res.Recovered {
		s.local.invalidate()
	}
	if s.saved == nil {
		racy, err := loadRacy(st)
		if err != nil {
			return res, err
		}
		s.saved, s.racy = racy, maps.Clone(racy)
	}
	if s.sess == nil {
		sess, err := dial(ctx, s.cfg)
		if err != nil {
			return res, err
		}
		s.sess = sess
		s.notify.take() // the full listing below sees everything
		if s.cfg.ServeCommand == "" {
			s.notify.setState("polling (serve-command is empty)")
		} else if err := startServe(sess.ssh, s.cfg.ServeCommand, s.cfg.Source, s.cfg.Excludes, s.cfg.ConnectTimeout, s.notify); err != nil {
			s.notify.setState("polling: " + err.Error())
		}
	}
	hints := s.notify.take()
	// With change notices, the periodic passes are the safety net: the whole tree is listed
	// every notifiedFullScans full-scan intervals, the passes in between check directories.
	s.remote.fullEvery = s.cfg.FullScan
	if s.notify.State() == "inotify" {
		s.remote.fullEvery = notifiedFullScans * s.cfg.FullScan
	}
	sess := s.sess
	read0, sent0 := sess.conn.read.Load(), sess.conn.written.Load()
	defer func() {
		res.NetRead = sess.conn.read.Load() - read0
		res.NetSent = sess.conn.written.Load() - sent0
		if err != nil {
			_ = s.Close() // a half-dead connection is never reused
		}
	}()

	// Remote phase, under the I/O timeout: no data for IOTimeout closes the connection,
	// which fails every outstanding SFTP request.
	stopWatch := s.watch(ctx, sess)
	remote, ls, err := s.remote.list(ctx, sess.sftp, s.cfg.Source, s.ex, s.cfg.Parallel, res.Start, s.racy, hints...)
	res.FullList, res.Listed, res.Checked = ls.full, ls.dirs, ls.stats
	if err != nil {
		stopWatch()
		return res, s.timeoutErr(sess, err)
	}
	remote = s.adjust(sess, remote, ls.gen)
	testHook("listed")
	for _, e := range remote {
		if e.Mode.IsRegular() {
			res.Total += e.Size
		}
	}
	res.Files = len(remote)
	local, err := s.local.list(s.target, s.ex, res.Start)
	if err != nil {
		stopWatch()
		return res, err
	}
	racy := racyAfter(s.racy, remote, res.Start.Unix(), ls.gen == s.racyGen)
	verify := racyToVerify(s.racy, remote, local)
	if len(verify) == 0 && sameTrees(remote, local, s.keepOwner) {
		stopWatch()
		return res, s.settleRacy(st, racy, ls.gen)
	}
	plan := makePlan(remote, local, s.keepOwner, nil)
	res.Refused = plan.Refused
	if len(verify) == 0 && plan.Idle() {
		stopWatch()
		return res, s.settleRacy(st, racy, ls.gen)
	}
	if err := checkSpace(filepath.Dir(s.target), append(append([]Entry{}, plan.Fetch...), verify...), s.cfg.SpaceReserve); err != nil {
		stopWatch()
		return res, err
	}
	ap, err := newApplier(s.target, st, s.keepOwner)
	if err != nil {
		stopWatch()
		return res, err
	}
	ap.fsyncEach = len(plan.Fetch)+len(verify) <= smallPass
	defer func() {
		if cerr := ap.close(); err == nil && cerr != nil {
			err = fmt.Errorf("remove staging: %w", cerr)
		}
	}()
	if len(verify) > 0 {
		res.Verified = len(verify)
		differs, err := ap.verify(ctx, sess, s.cfg.Source, verify, s.cfg.Parallel, &res.Received)
		if err != nil {
			stopWatch()
			return res, s.timeoutErr(sess, err)
		}
		if len(differs) > 0 {
			plan = makePlan(remote, local, s.keepOwner, differs)
			res.Refused = plan.Refused
		}
		if plan.Idle() {
			stopWatch()
			return res, s.settleRacy(st, racy, ls.gen)
		}
	}
	s.local.invalidate() // whatever happens next, walk the target again next time
	err = ap.stageFiles(ctx, sess, s.cfg.Source, plan, s.cfg.Parallel, &res.Received)
	stopWatch()
	res.Skipped = ap.skipped
	if err != nil {
		return res, s.timeoutErr(sess, err)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	// Before the commit, the target's racy file lists both sets: should the commit fail
	// (and be rolled back), the files this pass found changed are checked again.
	if both := union(s.racy, racy); !sameSet(both, s.saved) {
		if err := saveRacy(st, both); err != nil {
			return res, err
		}
		s.saved = both
	}
	if err := ap.commit(plan, local); err != nil {
		return res, err
	}
	s.racy, s.racyGen = racy, ls.gen // the target's file catches up at the next pass without changes
	res.Items = plan.Items
	res.Changes = plan.Changes()
	return res, nil
}

// adjust gives the primary's tree this node's owners (by name, unless NumericOwners; only
// when running as root) and drops setuid, setgid and sticky bits (unless
// PreserveSpecialBits). The result is kept per tree generation.
func (s *Syncer) adjust(sess *session, remote Tree, gen uint64) Tree {
	mapOwners := s.keepOwner && !s.cfg.NumericOwners
	if mapOwners && sess.ids == nil {
		m := loadIDMap(sess, os.ReadFile)
		sess.ids = &m
	}
	mapOwners = mapOwners && !sess.ids.empty()
	if !mapOwners && s.cfg.PreserveSpecialBits {
		return remote
	}
	if s.adjusted != nil && s.adjGen == gen {
		return s.adjusted
	}
	out := make(Tree, len(remote))
	for rel, e := range remote {
		if !s.cfg.PreserveSpecialBits {
			e.Mode &^= specialBits
		}
		if mapOwners {
			e = sess.ids.apply(e)
		}
		out[rel] = e
	}
	s.adjusted, s.adjGen = out, gen
	return out
}

// settleRacy ends a pass that changed nothing: racy becomes the racy set, written to the
// target when it differs from what is there.
func (s *Syncer) settleRacy(st *state, racy map[string]bool, gen uint64) error {
	if !sameSet(racy, s.saved) {
		if err := saveRacy(st, racy); err != nil {
			return err
		}
		s.saved = racy
	}
	s.racy, s.racyGen = racy, gen
	return nil
}

// racyToVerify lists the racy files the quick check finds unchanged (regular files on
// both sides, same size and time): those are compared by content.
func racyToVerify(racy map[string]bool, remote, local Tree) []Entry {
	var out []Entry
	for rel := range racy {
		r, l := remote[rel], local[rel]
		if r.Mode.IsRegular() && l.Mode.IsRegular() && r.Size == l.Size && r.Mtime == l.Mtime {
			out = append(out, r)
		}
	}
	return out
}

func union(a, b map[string]bool) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// ErrIOTimeout: no data arrived from the primary for the configured I/O timeout.
var ErrIOTimeout = fmt.Errorf("no data from the primary within the I/O timeout")

// watch closes the connection when ctx ends or no data arrives for IOTimeout; the
// returned function stops watching.
func (s *Syncer) watch(ctx context.Context, sess *session) (stop func()) {
	done := make(chan struct{})
	sess.conn.lastRead.Store(time.Now().UnixNano())
	tick := max(s.cfg.IOTimeout/10, 10*time.Millisecond)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				sess.close()
				return
			case <-t.C:
				if time.Since(time.Unix(0, sess.conn.lastRead.Load())) > s.cfg.IOTimeout {
					sess.timedOut.Store(true)
					sess.close()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

func (s *Syncer) timeoutErr(sess *session, err error) error {
	if sess.timedOut.Load() {
		return fmt.Errorf("%w (%s): %v", ErrIOTimeout, s.cfg.IOTimeout, err)
	}
	return err
}
