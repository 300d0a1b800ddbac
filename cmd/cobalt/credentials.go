package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/node-daemon/pki"
)

// kubeClient returns a client for the cluster of the kubeconfig, knowing scheme's types.
func (o *globalOptions) kubeClient(scheme *runtime.Scheme) (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.kubeconfig != "" {
		rules.ExplicitPath = o.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

// clientTLS returns the mTLS configuration for calling node daemons.
func (o *globalOptions) clientTLS(ctx context.Context) (*tls.Config, error) {
	if o.tlsDir != "" {
		return loadTLSDir(o.tlsDir)
	}
	ns, name, ok := strings.Cut(o.caSecret, "/")
	if !ok || ns == "" || name == "" {
		return nil, fmt.Errorf("--ca-secret %q must be namespace/name", o.caSecret)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := o.kubeClient(scheme)
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCASecret(ctx, c, types.NamespacedName{Namespace: ns, Name: name})
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	cert, err := ca.IssueClient("cobalt-cli", time.Now(), time.Hour)
	if err != nil {
		return nil, err
	}
	return pki.ClientTLSConfig(cert, ca.Pool(), "")
}

// loadTLSDir loads ca.crt, tls.crt and tls.key from dir.
func loadTLSDir(dir string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return nil, fmt.Errorf("load client certificate from %s: %w", dir, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("ca.crt holds no PEM certificate")
	}
	return pki.ClientTLSConfig(cert, pool, "")
}
