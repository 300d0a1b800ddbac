package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/internal/eiodev"
	"github.com/cobaltstore/cobalt/node-daemon/replvol"
)

const (
	// soakReplacementDelay is the operator's replacement delay: a killed daemon restarted at once
	// and a daemon stopped for less than soakLongStop's upper bound come back within it (their
	// copy is Lost after replHeartbeatTimeout, replaced this long after that).
	soakReplacementDelay = 10 * time.Second
	soakSyncInterval     = 500 * time.Millisecond
	// soakScrubInterval: the coordinators scrub all along, so a fault also lands during scrubs,
	// and a rotten block is found within seconds.
	soakScrubInterval = 4 * time.Second
	// soakSettle bounds the recovery from one fault.
	soakSettle = 3 * time.Minute
	// soakColdSpan is the end of each writer's lane that the stream never writes after the
	// soak's start: bit rot is put there, in regions no resync covers, so only reads through
	// the coordinator and the scrub meet it.
	soakColdSpan = 1 << 20
	soakHotSpan  = streamLane - soakColdSpan
	// soakAfter is how many writes must be acknowledged after a fault's recovery before the round
	// ends: the stream goes on over the recovered copies.
	soakAfter = 50
	// soakTableEvery is how many faults a long soak makes between two prints of the table so far.
	soakTableEvery = 25
)

// faultKind is one kind of fault of the soak.
type faultKind int

const (
	faultKillRestart faultKind = iota
	faultStopCont
	faultKillReplace
	faultTakeover
	faultTakeoverProcess
	faultBitRot
	faultDeviceFail
	faultDeviceEIO
	numFaultKinds
)

// key names the kind in COBALT_REPL_SOAK_KINDS.
func (k faultKind) key() string {
	return [...]string{"kill-restart", "stop-cont", "kill-replace", "takeover", "takeover-process", "bit-rot", "device-fail", "device-eio"}[k]
}

func (k faultKind) String() string {
	switch k {
	case faultKillRestart:
		return "SIGKILL replica daemon, restart"
	case faultStopCont:
		return "SIGSTOP replica daemon, SIGCONT"
	case faultKillReplace:
		return "SIGKILL replica daemon, replaced"
	case faultTakeover:
		return "takeover during writes"
	case faultTakeoverProcess:
		return "takeover from stopped coordinator process"
	case faultBitRot:
		return "bit rot on one copy's device"
	case faultDeviceFail:
		return "device fails under a running daemon"
	case faultDeviceEIO:
		return "device fails with EIO under a running daemon"
	}
	return fmt.Sprintf("fault %d", int(k))
}

// faultRow is what the soak counted for one kind of fault.
type faultRow struct {
	count int
	// acked is the writes acknowledged during these faults' rounds: each was verified after its
	// round (through the coordinator and on every copy) and again after every later fault.
	acked int
	// lost is the blocks whose acknowledged content was not read back (must be 0).
	lost int
	// rebuilt, resynced, compared are the bytes the coordinators copied and compared while
	// recovering from these faults; scrubRepaired the bytes scrubs (and the reconcile at a
	// takeover's Open) repaired, scrubBad the blocks they found bad or different.
	rebuilt, resynced, compared, scrubRepaired, scrubBad int64
	// synced counts the faults after which the copy was resynced or rebuilt (a short stop need
	// not drop it).
	synced int
	// inFlight and refused are the old coordinator's writes refused as fenced at takeovers: in
	// flight at the takeover, and after it resumed (none of the latter may land); landed is the
	// most blocks a check after such a fault found holding a write of unknown outcome (in flight
	// at a takeover: it landed, the same on every copy).
	inFlight, refused, landed int
	// rotSeen counts bit rot that a direct read of the copy still reported corrupt after the
	// coordinator had read the block correctly (the scrub had not repaired it yet).
	rotSeen int
	// slowest is the longest recovery (fault to every copy in sync again).
	slowest time.Duration
	// crashes counts the daemons that crashed at a device failure instead of retiring the store
	// (each logged with its panic).
	crashes int
	// eioFailed is the I/O the EIO devices failed at these faults, from the switch to the stop of
	// the daemon above them.
	eioFailed eiodev.Failures
}

// roundResult is what one fault's round did.
type roundResult struct {
	acked, inFlight, refused int
	synced                   bool
	rotSeen                  bool
	what                     string
}

// copyTotals sums the coordinators' counters of the copies (monotonic: the last stat of each
// copy of each coordinator).
type copyTotals struct {
	rebuilt, resynced, compared, scrubRepaired, scrubBad int64
}

// soak is the state of TestReplicationSoak.
type soak struct {
	t    *testing.T
	rc   *replCluster
	name string
	vol  *storagev1alpha1.Volume // UID and name; read the status with rc.volume
	seed uint64
	rng  *rand.Rand
	m    *model
	// the coordinator of the moment: its node, generation, replvol.Volumes and backend.
	node  string
	gen   uint64
	coord *replvol.Volumes
	be    csinode.ReplicatedBackend
	tags  uint64
	rows  [numFaultKinds]faultRow
	// seen holds the last stat of each copy of each coordinator, by generation and store;
	// forgotten sums the counters of copies the coordinator forgot (retired: a later copy on the
	// same Store starts from zero under the same key).
	seen      map[string]replvol.ReplicationStat
	forgotten copyTotals
	history   []string
	current   string
	stopped   *replNode // a daemon under SIGSTOP, resumed at cleanup if the test fails meanwhile
	// live is the write stream running, opened every coordinator's backend opened: both ended
	// at cleanup (closeAll) if the test fails meanwhile.
	live   *stream
	opened []csinode.ReplicatedBackend
	dumped bool // dumpState ran
}

// closeAll stops the write stream, if one runs, and closes every backend opened (their Close
// after a failure may fail: ignored).
func (s *soak) closeAll() {
	if s.live != nil {
		s.live.stop()
	}
	for _, be := range s.opened {
		_ = be.Close(context.Background())
	}
}

// TestReplicationSoak: a Volume of three copies on four node daemons (processes) under a
// continuous verified write stream, hit by faults chosen at random (each kind once per
// numFaultKinds faults, in random order) at random points of the stream: SIGKILL of a copy's
// daemon restarted at once (resynced), SIGSTOP of one for a random time then SIGCONT (short: not
// dropped; long: dropped and resynced), SIGKILL of one left dead (replaced on the spare Store and
// rebuilt, then restarted), a takeover by a coordinator on another node at the next generation
// while the old one writes (its writes refused as fenced, none landing, also after it resumes),
// the same through a coordinator process (this binary run again) that is stopped with SIGSTOP
// while the attachment moves on and resumed with SIGCONT, and bit rot of one acknowledged block on one copy's device (the daemon stopped, bytes inverted
// underneath the engine, restarted: reads through the coordinator return the acknowledged data,
// the scrub repairs the copy), and the device of a copy's Store failing under its running daemon
// (dropped, the Store not Ready saying why, replaced on the spare Store and rebuilt, then the
// daemon restarted on a blank disk), by shrinking its loop device or, on a node whose device is an
// eiodev device, with a real EIO (see replication_soak_device_test.go). After each fault, once
// every copy is in sync again and the stream went on, every acknowledged write is verified
// through the coordinator and on every copy, and
// the copies compare equal. It prints the fault table at the end. COBALT_REPL_SOAK_FAULTS sets the
// number of faults (default: one of each kind), COBALT_REPL_SOAK_SEED the seed (printed),
// COBALT_REPL_SOAK_KINDS the kinds of fault (default all, see faultKind.key).
func TestReplicationSoak(t *testing.T) {
	faults, seed, kinds := soakSettings(t)
	var keys []string
	for _, k := range kinds {
		keys = append(keys, k.key())
	}
	t.Logf("replication soak: %d faults of kinds %s, seed %d (replay with COBALT_REPL_SOAK_SEED=%d COBALT_REPL_SOAK_FAULTS=%d COBALT_REPL_SOAK_KINDS=%s)",
		faults, strings.Join(keys, ","), seed, seed, faults, strings.Join(keys, ","))
	began := time.Now()
	rc := newReplClusterEIO(t, soakReplacementDelay, eioNodes(kinds))
	s := &soak{t: t, rc: rc, name: "soak", seed: seed, rng: rand.New(rand.NewPCG(seed, 0x50a4)), m: newModel(),
		seen: map[string]replvol.ReplicationStat{}}
	t.Cleanup(s.dumpOnFailure)
	s.vol = rc.createVolume(t, s.name, 3)
	s.node = s.vol.Status.Replicas[0].Node
	s.gen = rc.publish(t, s.name, s.node)
	s.coord = rc.scrubbingCoordinator(t, s.node, soakSyncInterval, soakScrubInterval)
	s.be = rc.open(t, s.coord, s.vol, s.gen)
	s.opened = append(s.opened, s.be)
	t.Cleanup(s.closeAll)
	s.writeCold()

	var bag []int
	for i := range faults {
		if len(bag) == 0 {
			bag = s.rng.Perm(len(kinds))
		}
		kind := kinds[bag[0]]
		bag = bag[1:]
		s.round(i, faults, kind)
		if (i+1)%soakTableEvery == 0 && i+1 < faults {
			t.Logf("after %d of %d faults (%s):\n%s", i+1, faults, time.Since(began).Round(time.Second), s.table())
		}
	}
	if err := s.be.Close(context.Background()); err != nil {
		t.Fatalf("close the last coordinator: %v", err)
	}
	t.Logf("replication soak: %d faults in %s, seed %d", faults, time.Since(began).Round(time.Second), seed)
	t.Log("\n" + s.table())
}

// soakSettings reads COBALT_REPL_SOAK_FAULTS, COBALT_REPL_SOAK_SEED and COBALT_REPL_SOAK_KINDS
// (comma-separated keys of the kinds of fault to run; all when unset).
func soakSettings(t *testing.T) (faults int, seed uint64, kinds []faultKind) {
	seed = uint64(time.Now().UnixNano())
	if v := os.Getenv("COBALT_REPL_SOAK_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("COBALT_REPL_SOAK_SEED=%q is not a number: %v", v, err)
		}
		seed = n
	}
	all := map[string]faultKind{}
	var keys []string
	for k := range numFaultKinds {
		all[k.key()] = k
		keys = append(keys, k.key())
	}
	v := os.Getenv("COBALT_REPL_SOAK_KINDS")
	if v == "" {
		v = strings.Join(keys, ",")
		if !loopDevices() {
			// The devices are plain files: none can fail under the daemon.
			v = strings.Join(slices.DeleteFunc(slices.Clone(keys), func(k string) bool {
				return k == faultDeviceFail.key() || k == faultDeviceEIO.key()
			}), ",")
			t.Logf("not root or no losetup: the devices are files, so the soak leaves out %s and %s", faultDeviceFail.key(), faultDeviceEIO.key())
		} else if !eioDevices() {
			v = strings.Join(slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == faultDeviceEIO.key() }), ",")
			t.Logf("no FUSE (%v): the soak leaves out %s", eiodev.Available(), faultDeviceEIO.key())
		}
	}
	for _, key := range strings.Split(v, ",") {
		k, ok := all[strings.TrimSpace(key)]
		if !ok {
			t.Fatalf("COBALT_REPL_SOAK_KINDS=%q: no kind of fault %q (kinds: %s)", v, key, strings.Join(keys, ","))
		}
		if k == faultDeviceFail && !loopDevices() {
			t.Fatalf("COBALT_REPL_SOAK_KINDS=%q: %s needs loop devices (root and losetup)", v, k.key())
		}
		if k == faultDeviceEIO && !eioDevices() {
			t.Fatalf("COBALT_REPL_SOAK_KINDS=%q: %s needs loop devices and FUSE (root, losetup, /dev/fuse)", v, k.key())
		}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	faults = len(kinds) // one of each
	if v := os.Getenv("COBALT_REPL_SOAK_FAULTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("COBALT_REPL_SOAK_FAULTS=%q is not a positive number", v)
		}
		faults = n
	}
	return faults, seed, kinds
}

// eioNodes is how many of the nodes get an EIO device (eiodev) for the device-eio fault: none
// without that fault, all when device-fail (which needs a loop device over a plain file) does not
// run, else half, so that of three copies on four nodes at least one lies on each kind of device.
func eioNodes(kinds []faultKind) int {
	switch {
	case !slices.Contains(kinds, faultDeviceEIO):
		return 0
	case !slices.Contains(kinds, faultDeviceFail):
		return replNodes
	}
	return replNodes / 2
}

// writeCold writes the cold end of every lane once, through the coordinator.
func (s *soak) writeCold() {
	s.t.Helper()
	tag := s.nextTag()
	for w := range streamWriters {
		first := int64(w)*(streamLane/streamBlock) + soakHotSpan/streamBlock
		data := make([]byte, soakColdSpan)
		for b := range int64(soakColdSpan / streamBlock) {
			block := data[b*streamBlock : (b+1)*streamBlock]
			binary.LittleEndian.PutUint64(block, tag<<48|uint64(w)<<40|uint64(b))
			for i := 8; i < len(block); i++ {
				block[i] = byte(s.rng.Uint32())
			}
		}
		if err := s.be.WriteAt(context.Background(), data, first*streamBlock); err != nil {
			s.t.Fatalf("write the cold end of lane %d: %v", w, err)
		}
		s.m.ack(first, data)
	}
	if err := s.be.Flush(context.Background()); err != nil {
		s.t.Fatalf("flush the cold ends: %v", err)
	}
}

func (s *soak) nextTag() uint64 {
	s.tags++
	return s.tags
}

// startStream starts a verified write stream over the hot part of every lane through the
// coordinator of the moment.
func (s *soak) startStream() *stream {
	tag := s.nextTag()
	s.live = startStream(s.be, s.m, streamOptions{tag: tag, seed: s.seed + tag, stopOnError: true, span: soakHotSpan})
	return s.live
}

// round runs fault i of n: a stream, the fault at a random point of it, the recovery, more
// writes, then the verification of every acknowledged write and of the copies.
func (s *soak) round(i, n int, kind faultKind) {
	t := s.t
	t.Helper()
	s.current = fmt.Sprintf("fault %d of %d (%s)", i+1, n, kind)
	roundBegan := time.Now()
	before := s.totals()
	st := s.startStream()
	waitAcked(t, st, 20+s.rng.IntN(280))
	began := time.Now()
	var r roundResult
	switch kind {
	case faultKillRestart:
		s.killRestart(&r)
	case faultStopCont:
		s.stopCont(&r)
	case faultKillReplace:
		s.killReplace(&r)
	case faultTakeover:
		st = s.takeover(st, &r)
	case faultTakeoverProcess:
		st = s.takeoverProcess(st, &r)
	case faultBitRot:
		s.bitRot(&r)
	case faultDeviceFail:
		s.deviceFail(&r)
	case faultDeviceEIO:
		s.deviceEIO(&r)
	}
	took := time.Since(began)
	waitAcked(t, st, st.result().acked+soakAfter)
	res := st.stop()
	if res.failed > 0 {
		t.Fatalf("%s: %d writes or flushes of the coordinator in service failed: %v", s.current, res.failed, res.errs)
	}
	r.acked += res.acked
	if err := s.be.Flush(context.Background()); err != nil {
		t.Fatalf("%s: flush: %v", s.current, err)
	}
	row := &s.rows[kind]
	verifyBegan := time.Now()
	landed := s.verify(row)
	verified := time.Since(verifyBegan)
	after := s.totals()
	row.count++
	row.acked += r.acked
	row.inFlight += r.inFlight
	row.refused += r.refused
	row.landed = max(row.landed, landed)
	row.rebuilt += after.rebuilt - before.rebuilt
	row.resynced += after.resynced - before.resynced
	row.compared += after.compared - before.compared
	row.scrubRepaired += after.scrubRepaired - before.scrubRepaired
	row.scrubBad += after.scrubBad - before.scrubBad
	row.slowest = max(row.slowest, took)
	if r.synced {
		row.synced++
	}
	if r.rotSeen {
		row.rotSeen++
	}
	line := fmt.Sprintf("%s: %s; recovered in %s; %d writes acknowledged, all verified in %s, lost 0; rebuild %d B, resync %d B, compared %d B, scrub repaired %d B; round took %s",
		s.current, r.what, took.Round(time.Millisecond), r.acked, verified.Round(time.Millisecond), after.rebuilt-before.rebuilt, after.resynced-before.resynced,
		after.compared-before.compared, after.scrubRepaired-before.scrubRepaired, time.Since(roundBegan).Round(time.Millisecond))
	s.history = append(s.history, line)
	t.Log(line)
}

// pickCopy returns a random copy of the Volume (its Store) and the node holding it.
func (s *soak) pickCopy() (string, *replNode) {
	s.t.Helper()
	return s.pickCopyOn(func(*replNode) bool { return true })
}

// pickCopyOn returns a random copy of the Volume on a node for which ok holds, and that node.
func (s *soak) pickCopyOn(ok func(*replNode) bool) (string, *replNode) {
	s.t.Helper()
	vol := s.rc.volume(s.t, s.name)
	var stores []string
	var nodes []*replNode
	for _, c := range vol.Status.Replicas {
		if n := s.rc.nodeOfStore(s.t, c.Store); ok(n) {
			stores, nodes = append(stores, c.Store), append(nodes, n)
		}
	}
	if len(stores) == 0 {
		s.t.Fatalf("%s: no copy (%s) lies on a node with the device this fault needs", s.current, replicaSummary(vol))
	}
	i := s.rng.IntN(len(stores))
	return stores[i], nodes[i]
}

// killRestart: SIGKILL of a copy's daemon, restarted at once; the copy, dropped by the writes
// that failed on it, must be synced back (a resync from the dirty log; a rebuild if it was
// replaced meanwhile).
func (s *soak) killRestart(r *roundResult) {
	store, n := s.pickCopy()
	before := s.stat(store)
	n.signal(s.t, syscall.SIGKILL)
	<-n.proc.exited
	s.rc.restart(s.t, n)
	s.settle(func(v *storagev1alpha1.Volume) error { return s.caughtUp(v, store, before) })
	r.synced = true
	r.what = fmt.Sprintf("killed and restarted the daemon of %s (copy on %s)", n.name, store)
}

// stopCont: SIGSTOP of a copy's daemon for a random time, then SIGCONT. A short stop (under the
// heartbeat and replica timeouts) need not drop the copy; a long one (over the replica timeout,
// under the replacement delay) drops it and it must be resynced.
func (s *soak) stopCont(r *roundResult) {
	store, n := s.pickCopy()
	before := s.stat(store)
	long := s.rng.IntN(2) == 0
	d := 200*time.Millisecond + time.Duration(s.rng.Int64N(int64(1800*time.Millisecond)))
	if long {
		d = replReplicaTimeout + time.Second + time.Duration(s.rng.Int64N(int64(1500*time.Millisecond)))
	}
	n.signal(s.t, syscall.SIGSTOP)
	s.stopped = n
	time.Sleep(d) // the fault's duration
	n.signal(s.t, syscall.SIGCONT)
	s.stopped = nil
	if long {
		s.settle(func(v *storagev1alpha1.Volume) error { return s.caughtUp(v, store, before) })
		r.synced = true
	} else {
		s.settle(func(*storagev1alpha1.Volume) error { return nil })
		r.synced = s.stat(store).ComparedBytes > before.ComparedBytes
	}
	r.what = fmt.Sprintf("stopped the daemon of %s (copy on %s) for %s", n.name, store, d.Round(time.Millisecond))
}

// killReplace: SIGKILL of a copy's daemon, left dead: after the replacement delay the copy is
// replaced on the spare Store and rebuilt there; then the daemon is restarted (its Store is the
// next spare, its old copy retired).
func (s *soak) killReplace(r *roundResult) {
	store, n := s.pickCopy()
	spare := s.rc.spareStore(s.t, s.rc.volume(s.t, s.name))
	s.forgetCopy(spare)
	n.signal(s.t, syscall.SIGKILL)
	<-n.proc.exited
	s.settle(s.replacedOn(store, spare, faultKillReplace))
	s.rc.restart(s.t, n)
	r.synced = true
	r.what = fmt.Sprintf("killed the daemon of %s (copy on %s), replaced on %s and rebuilt, restarted", n.name, store, spare)
}

// replacedOn holds once the copy on store is no longer listed and a new copy on spare was rebuilt
// and compared; a new copy put in sync without a rebuild stops the wait, its missing acknowledged
// blocks counted as lost in kind's row.
func (s *soak) replacedOn(store, spare string, kind faultKind) func(*storagev1alpha1.Volume) error {
	return func(v *storagev1alpha1.Volume) error {
		if st := replicaState(v, store); st != "" {
			return fmt.Errorf("the lost copy on %s is still listed (%s)", store, st)
		}
		st := s.stat(spare)
		if st.State == string(storagev1alpha1.ReplicaInSync) && st.SyncedBytes[replvol.KindRebuild] == 0 {
			// A new copy put in sync without a rebuild: what of the acknowledged data does it hold?
			// The blocks it lacks count as lost: an in-sync copy serves reads.
			lost, what := s.coldCheck(spare)
			s.rows[kind].lost += lost
			return gomega.StopTrying(fmt.Sprintf("the new copy on the spare Store %s is InSync without a rebuild (a replacement starts empty and must be rebuilt): %+v; %s",
				spare, st, what))
		}
		if st.SyncedBytes[replvol.KindRebuild] == 0 || st.ComparedBytes == 0 {
			return fmt.Errorf("the copy on the spare Store %s is not rebuilt and compared yet: %+v", spare, st)
		}
		return nil
	}
}

// coldCheck reads the cold ends of the lanes (acknowledged once at the start, never written
// since) from the copy on store directly and returns how many of their blocks differ from the
// acknowledged data, and says so.
func (s *soak) coldCheck(store string) (int, string) {
	vol := s.rc.volume(s.t, s.name)
	bad, total := 0, 0
	var ex []string
	for w := range streamWriters {
		off := int64(w)*streamLane + soakHotSpan
		data, err := s.rc.readCopyAt(s.t, vol, store, off, soakColdSpan)
		if err != nil {
			return 0, fmt.Sprintf("the cold blocks could not be read from it: %v", err)
		}
		for b := range int64(soakColdSpan / streamBlock) {
			blk := off/streamBlock + b
			s.m.mu.Lock()
			want := s.m.acked[blk]
			s.m.mu.Unlock()
			got := data[b*streamBlock : (b+1)*streamBlock]
			total++
			if !bytes.Equal(got, want) {
				bad++
				if len(ex) < 4 {
					ex = append(ex, fmt.Sprintf("block %d holds %s, acknowledged %s", blk, blockTag(got), blockTag(want)))
				}
			}
		}
	}
	return bad, fmt.Sprintf("read directly, %d of the %d acknowledged blocks of the lanes' cold ends (never rewritten since the start) differ from the acknowledged data: %s",
		bad, total, strings.Join(ex, "; "))
}

// takeover moves the attachment to another node at the next generation while the coordinator
// of the moment writes (st): a coordinator there opens the Volume (claims and reconciles the
// copies), and the old one must be fenced (fenceOld). It returns the stream of the new
// coordinator.
func (s *soak) takeover(st *stream, r *roundResult) *stream {
	t := s.t
	oldNode, oldGen := s.node, s.gen
	next := s.otherNode(oldNode)
	gen := s.rc.takeOver(t, s.name, oldNode, next, oldGen)
	coord := s.rc.scrubbingCoordinator(t, next, soakSyncInterval, soakScrubInterval)
	be := s.rc.open(t, coord, s.vol, gen)
	s.opened = append(s.opened, be)
	r.acked, r.inFlight, r.refused = s.fenceOld(st, gen)
	s.be, s.coord, s.node, s.gen = be, coord, next, gen
	s.settle(func(*storagev1alpha1.Volume) error { return nil })
	r.what = fmt.Sprintf("attachment moved from %s (generation %d) to %s (generation %d), %d writes in flight refused, %d refused after the old one resumed",
		oldNode, oldGen, next, gen, r.inFlight, r.refused)
	return s.startStream()
}

// takeoverProcess: the attachment moves from the coordinator of the moment (in this process,
// writing st; fenced as in takeover) to a coordinator process on another node (this test binary
// run again), which writes and reports each acknowledged write; at a random point of its writes
// it is stopped (SIGSTOP) and the attachment moves on to a coordinator in this process on another
// node. Resumed (SIGCONT), the process's writes in flight fail as fenced (or were acknowledged,
// if every copy had them before the claim) and every write it makes after, its flush, read and
// Close are refused as fenced; none of those lands (they go to a model of their own).
func (s *soak) takeoverProcess(st *stream, r *roundResult) *stream {
	t := s.t
	inNode, inGen := s.node, s.gen
	procNode := s.otherNode(inNode)
	procGen := s.rc.takeOver(t, s.name, inNode, procNode, inGen)
	refused := newModel()
	tag := s.nextTag()
	s.nextTag() // the process's stream 2
	p := s.rc.startCoordProc(t, s.vol, procNode, procGen, tag, s.m, refused)
	acked, inFlight, _ := s.fenceOld(st, procGen)
	r.acked, r.inFlight = acked, inFlight
	want := 20 + s.rng.IntN(280)
	gomega.NewWithT(t).Eventually(func() error {
		select {
		case <-p.exited:
			return gomega.StopTrying(fmt.Sprintf("the coordinator process exited: %v", p.err))
		default:
		}
		if _, a, _, other, _ := p.report(); len(other) > 0 {
			return gomega.StopTrying(fmt.Sprintf("the coordinator process reported: %s", strings.Join(other, "; ")))
		} else if a[0] < want {
			return fmt.Errorf("the coordinator process has %d acknowledged writes, want %d", a[0], want)
		}
		return nil
	}, 2*time.Minute, 20*time.Millisecond).Should(gomega.Succeed(), "%s: the coordinator process writes", s.current)
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("%s: SIGSTOP the coordinator process: %v", s.current, err)
	}
	stoppedAt := time.Now()
	next := s.otherNode(procNode)
	gen := s.rc.takeOver(t, s.name, procNode, next, procGen)
	coord := s.rc.scrubbingCoordinator(t, next, soakSyncInterval, soakScrubInterval)
	be := s.rc.open(t, coord, s.vol, gen)
	s.opened = append(s.opened, be)
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("%s: SIGCONT the coordinator process: %v", s.current, err)
	}
	stoppedFor := time.Since(stoppedAt)
	select {
	case <-p.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: the resumed coordinator process did not finish within 2 minutes", s.current)
	}
	_, pAcked, pFenced, other, results := p.report()
	if p.err != nil || len(other) > 0 {
		t.Fatalf("%s: the coordinator process exited with %v, reporting: %s", s.current, p.err, strings.Join(other, "; "))
	}
	if pFenced[0] != streamWriters || pAcked[1] != 0 || pFenced[1] != streamWriters {
		t.Fatalf("%s: the resumed coordinator process: stream 1 %d acknowledged, %d refused as fenced; stream 2 (after the refusals) %d acknowledged, %d refused; want %d refused each and none acknowledged after",
			s.current, pAcked[0], pFenced[0], pAcked[1], pFenced[1], streamWriters)
	}
	for _, op := range []string{"flush", "read", "close"} {
		if !strings.HasPrefix(results[op], "fenced ") {
			t.Fatalf("%s: the resumed coordinator process's %s: %q, want refused as fenced", s.current, op, results[op])
		}
	}
	r.acked += pAcked[0]
	r.inFlight += pFenced[0]
	r.refused += pFenced[1]
	s.be, s.coord, s.node, s.gen = be, coord, next, gen
	s.settle(func(*storagev1alpha1.Volume) error { return nil })
	r.what = fmt.Sprintf("attachment moved from %s (generation %d) to a coordinator process on %s (generation %d; %d writes acknowledged), stopped for %s while it moved on to %s (generation %d): "+
		"%d of its writes in flight refused, %d refused after it resumed, flush, read and Close refused",
		inNode, inGen, procNode, procGen, pAcked[0], stoppedFor.Round(time.Millisecond), next, gen, pFenced[0], pFenced[1])
	return s.startStream()
}

// otherNode returns a random node other than node.
func (s *soak) otherNode(node string) string {
	for {
		if n := s.rc.nodes[s.rng.IntN(len(s.rc.nodes))].name; n != node {
			return n
		}
	}
}

// fenceOld checks that the coordinator of the moment, writing st, was fenced by the claim of a
// newer one (at generation gen): every writer of st stops at a refusal (ErrFenced); resumed with
// a fresh stream into a model of its own (so a write of it that landed is found as lost), every
// write is refused too, and so are its flush, read and Close. It returns st's acknowledged writes,
// st's writes refused (in flight at the takeover) and the resumed stream's refused writes.
func (s *soak) fenceOld(st *stream, gen uint64) (acked, inFlight, refusedAfter int) {
	t := s.t
	oldBE, oldCoord := s.be, s.coord
	gomega.NewWithT(t).Eventually(func() int { return st.result().failed }, time.Minute, 10*time.Millisecond).Should(gomega.Equal(streamWriters),
		"%s: every writer of the old coordinator stops at a refusal", s.current)
	oldRes := st.stop()
	s.checkFenced(oldRes.errs, "in flight at the takeover")
	refused := newModel()
	resumed := startStream(oldBE, refused, streamOptions{tag: s.nextTag(), seed: s.seed ^ gen, stopOnError: true, span: soakHotSpan})
	s.live = resumed
	gomega.NewWithT(t).Eventually(func() int { return resumed.result().failed }, time.Minute, 10*time.Millisecond).Should(gomega.Equal(streamWriters),
		"%s: every writer of the resumed old coordinator is refused", s.current)
	resumedRes := resumed.stop()
	if resumedRes.acked > 0 {
		t.Fatalf("%s: the fenced coordinator had %d writes acknowledged after the takeover", s.current, resumedRes.acked)
	}
	s.checkFenced(resumedRes.errs, "after it resumed")
	if err := oldBE.Flush(context.Background()); !errors.Is(err, csinode.ErrFenced) {
		t.Fatalf("%s: the old coordinator's flush: %v, want csinode.ErrFenced", s.current, err)
	}
	if err := oldBE.ReadAt(context.Background(), make([]byte, streamBlock), 0); !errors.Is(err, csinode.ErrFenced) {
		t.Fatalf("%s: the old coordinator's read: %v, want csinode.ErrFenced", s.current, err)
	}
	s.record(oldCoord)
	if err := oldBE.Close(context.Background()); !errors.Is(err, csinode.ErrFenced) {
		t.Fatalf("%s: closing the old coordinator: %v, want its last flush refused as fenced", s.current, err)
	}
	return oldRes.acked, oldRes.failed, resumedRes.failed
}

func (s *soak) checkFenced(errs []error, when string) {
	for _, err := range errs {
		if !errors.Is(err, csinode.ErrFenced) {
			s.t.Fatalf("%s: a write of the old coordinator %s failed with %v, want csinode.ErrFenced", s.current, when, err)
		}
	}
}

// bitRot: a copy's daemon is stopped (SIGTERM), one acknowledged block of the cold end of a lane
// is damaged on its device underneath the engine, the daemon restarted. Once the copy is in sync
// again, the block reads back through the coordinator as acknowledged, and a scheduled scrub
// finds it on that copy and repairs it from a good one.
func (s *soak) bitRot(r *roundResult) {
	t := s.t
	store, n := s.pickCopy()
	w := s.rng.IntN(streamWriters)
	blk := int64(w)*(streamLane/streamBlock) + soakHotSpan/streamBlock + s.rng.Int64N(soakColdSpan/streamBlock)
	s.m.mu.Lock()
	want := s.m.acked[blk]
	s.m.mu.Unlock()
	if want == nil {
		t.Fatalf("%s: cold block %d was never acknowledged", s.current, blk)
	}
	before := s.stat(store)
	if _, err := n.proc.terminate(t, time.Minute); err != nil {
		select {
		case <-n.proc.exited: // it exited, with an error: a shutdown of the daemon that cut its streams
		default:
			t.Fatalf("%s: stop the daemon of %s: %v", s.current, n.name, err)
		}
	}
	damaged := rotBlock(t, n, s.vol, blk*streamBlock, want)
	s.rc.restart(t, n)
	s.settle(func(v *storagev1alpha1.Volume) error { return s.caughtUp(v, store, before) })
	// The coordinator reads the block from a good copy; then the rotten copy is read directly.
	got := make([]byte, streamBlock)
	if err := s.be.ReadAt(context.Background(), got, blk*streamBlock); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: read of the rotten block %d through the coordinator: %v, %s; want %s", s.current, blk, err, blockTag(got), blockTag(want))
	}
	direct, err := s.rc.readCopyAt(t, s.vol, store, blk*streamBlock, streamBlock)
	switch {
	case status.Code(errors.Unwrap(err)) == codes.DataLoss || status.Code(err) == codes.DataLoss:
		r.rotSeen = true
	case err == nil && bytes.Equal(direct, want):
		// A scrub repaired it already; the counters below must show it.
	default:
		t.Fatalf("%s: direct read of the rotten block %d on %s: %v (%s), want DataLoss or, once repaired, %s", s.current, blk, store, err, blockTag(direct), blockTag(want))
	}
	var st replvol.ReplicationStat
	gomega.NewWithT(t).Eventually(func() error {
		st = s.stat(store)
		if st.ScrubRepairedBytes < before.ScrubRepairedBytes+streamBlock || st.ScrubMismatches <= before.ScrubMismatches {
			return fmt.Errorf("no scrub repaired the copy on %s yet: %+v (before the fault %+v)", store, st, before)
		}
		return nil
	}, soakSettle, 100*time.Millisecond).Should(gomega.Succeed(), "%s: the scrub repairs the rotten block", s.current)
	direct, err = s.rc.readCopyAt(t, s.vol, store, blk*streamBlock, streamBlock)
	if err != nil || !bytes.Equal(direct, want) {
		t.Fatalf("%s: the rotten block %d on %s after the scrub's repair: %v, %s; want %s", s.current, blk, store, err, blockTag(direct), blockTag(want))
	}
	r.synced = true
	r.what = fmt.Sprintf("block %d (%s) damaged on %s's device at %v, the copy on %s resynced; read through the coordinator as acknowledged, "+
		"direct read corrupt before the scrub: %t; scrub repaired it", blk, blockTag(want), n.name, damaged, store, r.rotSeen)
}

// caughtUp holds once the copy on store was synced (resync or rebuild, then compared) since
// before, or was replaced by a copy on another Store that was rebuilt.
func (s *soak) caughtUp(v *storagev1alpha1.Volume, store string, before replvol.ReplicationStat) error {
	if replicaState(v, store) == "" {
		return nil // replaced: the settle's three copies in sync include the rebuilt one
	}
	if st := s.stat(store); st.ComparedBytes <= before.ComparedBytes {
		return fmt.Errorf("the copy on %s was not synced back since the fault (compared %d bytes since the coordinator's Open, as before)", store, st.ComparedBytes)
	}
	return nil
}

// settle waits until the Volume has three copies, all InSync in its status and in the
// coordinator's in-sync set with no dirty region, is not Degraded, its last scrub (if any) did not
// fail, and cond holds; it fails with the Volume's and the coordinator's state otherwise.
func (s *soak) settle(cond func(*storagev1alpha1.Volume) error) {
	s.t.Helper()
	// On failure the state is logged first, while every daemon still runs as the fault left it.
	g := gomega.NewGomega(func(message string, _ ...int) {
		s.t.Helper()
		s.dumpState()
		s.t.Fatalf("%s: the copies did not all come back in sync: %s", s.current, message)
	})
	g.Eventually(func() error {
		v := s.rc.volume(s.t, s.name)
		if len(v.Status.Replicas) != 3 || inSyncCount(v) != 3 || isDegraded(v) {
			return fmt.Errorf("copies %s, conditions %s", replicaSummary(v), conditionSummary(v))
		}
		if c := meta.FindStatusCondition(v.Status.Conditions, replvol.ConditionScrubbed); c != nil && c.Status == metav1.ConditionFalse {
			return fmt.Errorf("the last scrub did not leave the copies equal: %s: %s", c.Reason, c.Message)
		}
		for _, c := range v.Status.Replicas {
			if st := s.stat(c.Store); st.State != string(storagev1alpha1.ReplicaInSync) || st.DirtyBytes != 0 {
				return fmt.Errorf("the coordinator holds the copy on %s %s with %d dirty bytes", c.Store, st.State, st.DirtyBytes)
			}
		}
		return cond(v)
	}, soakSettle, 100*time.Millisecond).Should(gomega.Succeed())
}

// stat returns the coordinator's stat of the copy on store (zero when it has none).
func (s *soak) stat(store string) replvol.ReplicationStat {
	s.record(s.coord)
	st, _ := replStat(s.coord, store)
	return st
}

// record keeps the last stat of every copy of coord.
func (s *soak) record(coord *replvol.Volumes) {
	for _, st := range coord.ReplicationStats() {
		key := fmt.Sprintf("%d/%s", st.Generation, st.Store)
		if old, ok := s.seen[key]; ok && (st.ComparedBytes < old.ComparedBytes || st.ScrubRepairedBytes < old.ScrubRepairedBytes ||
			st.SyncedBytes[replvol.KindRebuild] < old.SyncedBytes[replvol.KindRebuild] || st.SyncedBytes[replvol.KindResync] < old.SyncedBytes[replvol.KindResync]) {
			s.forgotten.add(old)
		}
		s.seen[key] = st
	}
}

// forgetCopy moves the last counters of the coordinator's former copy on store into forgotten,
// when the coordinator no longer lists one there: a copy placed on that Store later starts from
// zero under the same key and may reach the same counters (a full rebuild of the volume) before
// record ever sees them lower, and its bytes would not be counted.
func (s *soak) forgetCopy(store string) {
	if _, err := replStat(s.coord, store); err == nil {
		return
	}
	key := fmt.Sprintf("%d/%s", s.gen, store)
	if old, ok := s.seen[key]; ok {
		s.forgotten.add(old)
		delete(s.seen, key)
	}
}

// totals sums the counters of every copy of every coordinator so far.
func (s *soak) totals() copyTotals {
	s.record(s.coord)
	c := s.forgotten
	for _, st := range s.seen {
		c.add(st)
	}
	return c
}

// add adds the counters of st.
func (c *copyTotals) add(st replvol.ReplicationStat) {
	c.rebuilt += st.SyncedBytes[replvol.KindRebuild]
	c.resynced += st.SyncedBytes[replvol.KindResync]
	c.compared += st.ComparedBytes
	c.scrubRepaired += st.ScrubRepairedBytes
	c.scrubBad += st.ScrubMismatches
}

// verify reads the whole volume through the coordinator and every copy directly, checks each
// against the model (counting lost blocks into row, and failing on any) and the copies against
// each other; it returns how many blocks hold the content of a write of unknown outcome.
func (s *soak) verify(row *faultRow) (landed int) {
	t := s.t
	t.Helper()
	data := make([]byte, replVolumeSize)
	const chunk = 1 << 20
	for off := int64(0); off < replVolumeSize; off += chunk {
		if err := s.be.ReadAt(context.Background(), data[off:off+chunk], off); err != nil {
			t.Fatalf("%s: read through the coordinator at %d: %v", s.current, off, err)
		}
	}
	s.checkLost(row, "read through the coordinator", data)
	vol := s.rc.volume(t, s.name)
	var first []byte
	var firstStore string
	for _, c := range vol.Status.Replicas {
		copyData := s.rc.readCopy(t, vol, c.Store)
		landed = s.checkLost(row, "the copy on "+c.Store, copyData)
		if first == nil {
			first, firstStore = copyData, c.Store
		} else if diff := s.m.differences(first, copyData, 8); diff != "" {
			t.Fatalf("%s: copies on %s and %s differ (copies %s): %s", s.current, firstStore, c.Store, replicaSummary(vol), diff)
		}
	}
	return landed
}

// checkLost fails the test, after counting them in row and printing the table, if data lost
// acknowledged writes; it returns how many blocks hold a write of unknown outcome.
func (s *soak) checkLost(row *faultRow, what string, data []byte) int {
	lost, landed := s.m.lostBlocks(data)
	if len(lost) == 0 {
		return landed
	}
	row.lost += len(lost)
	var ex []string
	for _, b := range lost[:min(len(lost), 8)] {
		s.m.mu.Lock()
		want := s.m.acked[b]
		s.m.mu.Unlock()
		if want == nil {
			want = make([]byte, streamBlock)
		}
		ex = append(ex, fmt.Sprintf("block %d holds %s, acknowledged %s", b, blockTag(data[b*streamBlock:(b+1)*streamBlock]), blockTag(want)))
	}
	s.t.Log("\n" + s.table())
	s.t.Fatalf("%s: %s lost %d acknowledged blocks: %s", s.current, what, len(lost), strings.Join(ex, "; "))
	return landed
}

// table renders the fault table.
func (s *soak) table() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "fault\t| count\t| acknowledged writes verified\t| lost\t| synced back\t| rebuild bytes\t| resync bytes\t| compared bytes\t| scrub repaired bytes\t| slowest recovery\t| notes")
	var total faultRow
	for k := range numFaultKinds {
		r := s.rows[k]
		note := ""
		switch k {
		case faultTakeover, faultTakeoverProcess:
			note = fmt.Sprintf("old coordinator's writes refused as fenced: %d in flight at the takeover (up to %d blocks of them found landed at a check, equal on every copy), %d after it resumed (none landed)",
				r.inFlight, r.landed, r.refused)
		case faultBitRot:
			note = fmt.Sprintf("rot still reported corrupt by a direct read after the coordinator read the block right: %d; scrubs found %d bad blocks", r.rotSeen, r.scrubBad)
		case faultStopCont:
			note = fmt.Sprintf("%d long stops dropped and resynced the copy, the short ones need not", r.synced)
		case faultDeviceFail:
			note = fmt.Sprintf("copy dropped, Store not Ready saying why, copy replaced on the spare Store and rebuilt; daemon crashes: %d (each a failure, logged with its panic)",
				r.crashes)
		case faultDeviceEIO:
			note = fmt.Sprintf("copy dropped, Store not Ready saying why, copy replaced on the spare Store and rebuilt; daemon crashes: %d (each a failure, logged with its panic); "+
				"I/O the device failed with EIO, from the switch to the daemon's stop: %d reads, %d writes, %d flushes, %d trims", r.crashes, r.eioFailed.Reads, r.eioFailed.Writes, r.eioFailed.Flushes, r.eioFailed.Trims)
		}
		fmt.Fprintf(tw, "%s\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %s\t| %s\n", k, r.count, r.acked, r.lost, r.synced,
			r.rebuilt, r.resynced, r.compared, r.scrubRepaired, r.slowest.Round(time.Millisecond), note)
		total.count += r.count
		total.acked += r.acked
		total.lost += r.lost
		total.synced += r.synced
		total.rebuilt += r.rebuilt
		total.resynced += r.resynced
		total.compared += r.compared
		total.scrubRepaired += r.scrubRepaired
		total.slowest = max(total.slowest, r.slowest)
	}
	s.m.mu.Lock()
	live := len(s.m.acked)
	s.m.mu.Unlock()
	fmt.Fprintf(tw, "total\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %d\t| %s\t| seed %d; after each fault every acknowledged block (%d at the end) read back through the coordinator and from each of the 3 copies\n",
		total.count, total.acked, total.lost, total.synced, total.rebuilt, total.resynced, total.compared, total.scrubRepaired,
		total.slowest.Round(time.Millisecond), s.seed, live)
	_ = tw.Flush()
	return b.String()
}

// dumpOnFailure resumes a stopped daemon and, when the test failed, logs the soak's state
// (dumpState) unless that was done already.
func (s *soak) dumpOnFailure() {
	if s.stopped != nil {
		_ = s.stopped.proc.cmd.Process.Signal(syscall.SIGCONT)
	}
	if s.t.Failed() && !s.dumped {
		s.dumpState()
	}
}

// dumpState logs the seed, the faults so far, the fault table, the Volume's status and the
// coordinator's view of the copies.
func (s *soak) dumpState() {
	s.dumped = true
	s.t.Logf("replication soak failed at %s; seed %d; faults before it:\n%s", s.current, s.seed, strings.Join(s.history, "\n"))
	s.t.Log("\n" + s.table())
	if v := s.rc.volume(s.t, s.name); v != nil {
		s.t.Logf("Volume: copies %s; conditions %s; attachment %+v", replicaSummary(v), conditionSummary(v), v.Status.Attachment)
		if c := meta.FindStatusCondition(v.Status.Conditions, replvol.ConditionScrubbed); c != nil {
			s.t.Logf("last scrub: %s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	if s.coord != nil {
		for _, st := range s.coord.ReplicationStats() {
			s.t.Logf("coordinator on %s (generation %d): %+v", s.node, s.gen, st)
		}
	}
}
