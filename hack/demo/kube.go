package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// kubectl runs the kubectl binary against the demo's cluster, logging every command and its
// output to logPath.
type kubectl struct {
	bin        string
	kubeconfig string
	logPath    string
}

// run returns kubectl's standard output; on failure the error carries its standard error.
func (k kubectl) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.kubeconfig)
	var stdout, stderr strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	logged := stdout.String()
	if len(args) >= 2 && logged != "" && (args[0] == "create" && args[1] == "token" || args[0] == "config" && args[1] == "view") {
		logged = "<output not logged: it may hold credentials>\n"
	}
	k.log(args, logged, stderr.String(), err)
	if err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (k kubectl) log(args []string, stdout, stderr string, err error) {
	f, ferr := os.OpenFile(k.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "--- %s: kubectl %s\n%s%s", time.Now().Format(time.RFC3339), strings.Join(args, " "), stdout, stderr)
	if err != nil {
		fmt.Fprintf(f, "error: %v\n", err)
	}
}

// condition is one condition of an object's status.
type condition struct{ status, reason, message string }

func (c condition) String() string {
	if c.status == "" {
		return "no Ready condition yet"
	}
	s := "Ready=" + c.status
	if c.reason != "" {
		s += " (" + c.reason + ")"
	}
	if c.message != "" {
		s += ": " + c.message
	}
	return s
}

// readyCondition reads the Ready condition of resource/name in namespace ns ("" for cluster scope).
func (k kubectl) readyCondition(ctx context.Context, ns, resource, name string) (condition, error) {
	args := []string{"get", resource, name, "-o",
		`jsonpath={range .status.conditions[?(@.type=="Ready")]}{.status}{"\t"}{.reason}{"\t"}{.message}{end}`}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	out, err := k.run(ctx, args...)
	if err != nil {
		return condition{}, err
	}
	parts := strings.SplitN(out, "\t", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return condition{status: parts[0], reason: parts[1], message: strings.TrimSpace(parts[2])}, nil
}
