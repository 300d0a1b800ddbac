package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// serviceAccountKubeconfig writes to path a kubeconfig that authenticates as ServiceAccount
// ns/sa, so a process runs with exactly the permissions it has in a real cluster; the file is
// removed on exit.
func (d *demo) serviceAccountKubeconfig(ctx context.Context, ns, sa, path string) error {
	if sa == "" {
		return fmt.Errorf("the pod template names no ServiceAccount")
	}
	token, err := d.kc.run(ctx, "create", "token", sa, "-n", ns, "--duration=24h")
	if err != nil {
		return err
	}
	server, err := d.kc.run(ctx, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	if err != nil {
		return err
	}
	caData, err := d.kc.run(ctx, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}")
	if err != nil {
		return err
	}
	cluster := fmt.Sprintf("    server: %s\n", strings.TrimSpace(server))
	if ca := strings.TrimSpace(caData); ca != "" {
		cluster += fmt.Sprintf("    certificate-authority-data: %s\n", ca)
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster:
%[1]scontexts:
- name: %[3]s
  context:
    cluster: demo
    user: %[3]s
    namespace: %[2]s
current-context: %[3]s
users:
- name: %[3]s
  user:
    token: %[4]s
`, cluster, ns, sa, strings.TrimSpace(token))
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d.onExit("removed "+filepath.Base(path)+" (it holds a ServiceAccount token)", func(context.Context) error { return os.Remove(path) })
	return nil
}
