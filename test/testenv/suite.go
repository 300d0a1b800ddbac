package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// Main runs a test package against one Env: it starts it with opts, calls setup (when not nil)
// with a context that ends when the tests are over, runs the tests and stops everything. It
// returns the exit code for os.Exit; what goes wrong is written to standard error.
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, setup)) }
func Main(m *testing.M, opts Options, setup func(ctx context.Context, env *Env) error) (code int) {
	env, err := Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		cancel()
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}()
	if setup != nil {
		if err := setup(ctx, env); err != nil {
			fmt.Fprintln(os.Stderr, "test setup:", err)
			return 1
		}
	}
	return m.Run()
}

// TB is the part of testing.TB and of ginkgo's GinkgoT() that Setup uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Cleanup(func())
}

// Setup starts an Env for a test or, given GinkgoT() in a BeforeSuite, for a ginkgo suite: it
// fails t when the Env cannot start, and stops the Env in t's cleanup (after the suite, in
// ginkgo), failing t if stopping goes wrong.
func Setup(t TB, opts Options) *Env {
	t.Helper()
	env, err := Start(opts)
	if err != nil {
		t.Fatalf("%v", err)
		return nil
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return env
}
