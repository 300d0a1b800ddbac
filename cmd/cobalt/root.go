package main

import (
	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	kubeconfig string
	namespace  string
	caSecret   string
	tlsDir     string
}

// newRootCommand builds the command tree; name is how the user invoked it (see commandName),
// which help and usage texts show.
func newRootCommand(name string) *cobra.Command {
	opts := &globalOptions{}
	root := &cobra.Command{
		Use:           "cobalt",
		Short:         "Cobalt storage: status, volume I/O and benchmarks",
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: name},
	}
	f := root.PersistentFlags()
	f.StringVar(&opts.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVarP(&opts.namespace, "namespace", "n", "default", "namespace of Volumes")
	f.StringVar(&opts.caSecret, "ca-secret", "cobalt-system/cobalt-ca", "namespace/name of the cluster CA Secret, used to issue this command a client certificate")
	f.StringVar(&opts.tlsDir, "tls-dir", "", "directory with ca.crt, tls.crt and tls.key to use instead of --ca-secret")
	root.AddCommand(newVolumeCommand(opts), newBenchCommand(opts), newStatusCommand(opts))
	return root
}
