package integration

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/replvol"
)

// coordChildEnv, when set (to a coordChildConfig in JSON), makes the test binary a coordinator
// process instead of running the tests (TestMain): the coordinator of a replicated Volume as the
// CSI node plugin runs it (package replvol), in a process of its own, so that a test can stop it
// with SIGSTOP for real while another node takes over.
const coordChildEnv = "COBALT_IT_COORDINATOR"

// coordChildConfig is what a coordinator process opens and writes.
type coordChildConfig struct {
	Kubeconfig string
	// Namespace holds the Volume and the node API's CA Secret (cobalt-ca), from which the
	// process issues its own peer certificate named Node.
	Namespace, Volume, VolumeUID, Node string
	Generation                         uint64
	// Tag marks the writes of its first stream, Tag+1 those it makes once the first stream was
	// refused (it resumed after a takeover); Span is each writer's span (bytes from the start of
	// its lane).
	Tag  uint64
	Span int64
}

// The coordinator process reports on stdout, one line each, in this protocol:
//
//	O                         the Volume is open
//	A <stream> <writer> <seq> write seq of writer of stream (1 or 2) acknowledged (its range and
//	                          content are coordWrite's)
//	F <stream> <writer> <seq> <fenced|error> <message>
//	                          that write (or the flush after it) failed; the writer stops
//	R <flush|read|close> <fenced|error|ok> <message>
//	                          after stream 2: the result of a flush, a read, and Close
//	E <message>               it could not open the Volume or go on; it exits with status 1
//
// Stream 2 starts once every writer of stream 1 stopped; the process exits after the R lines.

// coordWrite is the range (first block) and content of write seq of writer w of the stream
// tagged tag, over the first span bytes of w's lane: a pure function, so the parent rebuilds
// from an A or F line what the process wrote.
func coordWrite(tag uint64, w int, seq uint64, span int64) (first int64, data []byte) {
	rng := rand.New(rand.NewPCG(tag<<8|uint64(w), seq))
	blocks := span / streamBlock
	n := rng.Int64N(min(16, blocks)) + 1
	first = int64(w)*(streamLane/streamBlock) + rng.Int64N(blocks-n+1)
	data = make([]byte, n*streamBlock)
	for b := range n {
		block := data[b*streamBlock : (b+1)*streamBlock]
		binary.LittleEndian.PutUint64(block, tag<<48|uint64(w)<<40|seq)
		for i := 8; i < len(block); i++ {
			block[i] = byte(rng.Uint32())
		}
	}
	return first, data
}

// runCoordinatorChild is the coordinator process (see coordChildEnv); it returns the exit status.
func runCoordinatorChild(cfgJSON string) int {
	out := &lineWriter{w: bufio.NewWriter(os.Stdout)}
	if err := coordinate(cfgJSON, out); err != nil {
		out.printf("E %s", strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	return 0
}

// lineWriter writes whole lines to stdout from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
	_ = l.w.Flush()
}

func coordinate(cfgJSON string, out *lineWriter) error {
	var cfg coordChildConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return fmt.Errorf("%s: %w", coordChildEnv, err)
	}
	ctx := context.Background()
	rest, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), storagev1alpha1.AddToScheme(scheme)); err != nil {
		return err
	}
	cl, err := client.New(rest, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	ca, err := pki.LoadCASecret(ctx, cl, types.NamespacedName{Namespace: cfg.Namespace, Name: "cobalt-ca"})
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	cert, err := ca.IssueClient(cfg.Node, time.Now(), time.Hour)
	if err != nil {
		return err
	}
	tlsConfig, err := pki.ClientTLSConfig(cert, ca.Pool(), "")
	if err != nil {
		return err
	}
	vols, err := replvol.New(replvol.Options{
		Client: cl, APIReader: cl, NodeName: cfg.Node,
		Node:           replica.NewNode(noLocalStores{}),
		Local:          func(string) bool { return false },
		Dialer:         replvol.NodeAPIDialer{TLS: tlsConfig},
		SyncInterval:   soakSyncInterval,
		ReplicaTimeout: replReplicaTimeout,
		Log:            logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil)).WithName("coordinator-" + cfg.Node),
	})
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	be, _, err := vols.Open(octx, csinode.ReplicatedOpen{Volume: cfg.Namespace + "/" + cfg.Volume, VolumeUID: cfg.VolumeUID, Generation: cfg.Generation})
	cancel()
	if err != nil {
		return fmt.Errorf("open at generation %d: %w", cfg.Generation, err)
	}
	out.printf("O")
	for stream := uint64(1); stream <= 2; stream++ {
		var wg sync.WaitGroup
		for w := range streamWriters {
			wg.Go(func() { coordWriter(be, out, cfg, stream, w) })
		}
		wg.Wait()
	}
	outcome := func(err error) string {
		switch {
		case err == nil:
			return "ok -"
		case errors.Is(err, csinode.ErrFenced):
			return "fenced " + strconv.Quote(err.Error())
		}
		return "error " + strconv.Quote(err.Error())
	}
	out.printf("R flush %s", outcome(be.Flush(ctx)))
	out.printf("R read %s", outcome(be.ReadAt(ctx, make([]byte, streamBlock), 0)))
	out.printf("R close %s", outcome(be.Close(ctx)))
	return nil
}

// coordWriter writes coordWrite's writes of writer w of stream (flushing every
// streamFlushEvery) until one fails, reporting each.
func coordWriter(be csinode.ReplicatedBackend, out *lineWriter, cfg coordChildConfig, stream uint64, w int) {
	tag := cfg.Tag + stream - 1
	for seq := uint64(1); ; seq++ {
		first, data := coordWrite(tag, w, seq, cfg.Span)
		err := be.WriteAt(context.Background(), data, first*streamBlock)
		if err == nil && seq%streamFlushEvery == 0 {
			err = be.Flush(context.Background())
		}
		switch {
		case err == nil:
			out.printf("A %d %d %d", stream, w, seq)
			continue
		case errors.Is(err, csinode.ErrFenced):
			out.printf("F %d %d %d fenced %q", stream, w, seq, err.Error())
		default:
			out.printf("F %d %d %d error %q", stream, w, seq, err.Error())
		}
		return
	}
}

// coordProc is a coordinator process started by the test, and what it reported.
type coordProc struct {
	*proc
	// mu guards the fields below, which the reader of its stdout updates.
	mu      sync.Mutex
	opened  bool
	acked   [2]int // by stream
	fenced  [2]int // writes refused as fenced, by stream
	other   []string
	results map[string]string // R lines: flush, read, close -> "fenced ...", "ok -", "error ..."
}

// startCoordProc runs the test binary as a coordinator process (coordChildEnv) of vol for node
// at generation gen. Its acknowledged writes of stream 1 go to m, the ones that failed (in
// flight at a takeover) to m as of unknown outcome; its writes of stream 2 (made after every
// writer of stream 1 stopped) go to refused. It is killed at cleanup if still running.
func (rc *replCluster) startCoordProc(t *testing.T, vol *storagev1alpha1.Volume, node string, gen, tag uint64, m, refused *model) *coordProc {
	t.Helper()
	cfg, err := json.Marshal(coordChildConfig{Kubeconfig: kubeconfig, Namespace: vol.Namespace, Volume: vol.Name, VolumeUID: string(vol.UID),
		Node: node, Generation: gen, Tag: tag, Span: soakHotSpan})
	if err != nil {
		t.Fatal(err)
	}
	p := &coordProc{results: map[string]string{}}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), coordChildEnv+"="+string(cfg))
	p.proc = start(t, cmd, "coordinator process", func(stdout io.Reader) { p.read(stdout, tag, m, refused) })
	return p
}

// read parses the process's reports until its stdout closes.
func (p *coordProc) read(r io.Reader, tag uint64, m, refused *model) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		p.mu.Lock()
		switch {
		case line == "O":
			p.opened = true
		case len(f) >= 4 && (f[0] == "A" || f[0] == "F"):
			stream, _ := strconv.Atoi(f[1])
			w, _ := strconv.Atoi(f[2])
			seq, _ := strconv.ParseUint(f[3], 10, 64)
			if stream < 1 || stream > 2 {
				p.other = append(p.other, "unknown stream: "+line)
				break
			}
			first, data := coordWrite(tag+uint64(stream)-1, w, seq, soakHotSpan)
			into := m
			if stream == 2 {
				into = refused
			}
			switch {
			case f[0] == "A":
				into.ack(first, data)
				p.acked[stream-1]++
			case len(f) >= 5 && f[4] == "fenced":
				into.failed(first, data)
				p.fenced[stream-1]++
			default:
				into.failed(first, data)
				p.other = append(p.other, line)
			}
		case len(f) >= 3 && f[0] == "R":
			p.results[f[1]] = strings.Join(f[2:], " ")
		default:
			p.other = append(p.other, line)
		}
		p.mu.Unlock()
	}
}

// report returns a copy of what the process reported so far.
func (p *coordProc) report() (opened bool, acked, fenced [2]int, other []string, results map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	results = map[string]string{}
	for k, v := range p.results {
		results[k] = v
	}
	return p.opened, p.acked, p.fenced, append([]string(nil), p.other...), results
}
