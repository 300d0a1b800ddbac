package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

func newStatusCommand(g *globalOptions) *cobra.Command {
	var allNamespaces bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show stores (capacity, usage, health, volume copies) and volumes (the claim each backs, the store and node of each copy, copies in sync) in tables",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.cobaltClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var stores storagev1alpha1.StoreList
			if err := c.List(ctx, &stores); err != nil {
				return fmt.Errorf("list Stores: %w", err)
			}
			var vols storagev1alpha1.VolumeList
			var opts []client.ListOption
			if !allNamespaces {
				opts = append(opts, client.InNamespace(g.namespace))
			}
			if err := c.List(ctx, &vols, opts...); err != nil {
				return fmt.Errorf("list Volumes: %w", err)
			}
			return printStatus(cmd.OutOrStdout(), stores.Items, vols.Items, time.Now())
		},
	}
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "show Volumes of every namespace")
	return cmd
}

// condition returns the status and reason of a condition, or "Unknown".
func condition(conds []metav1.Condition, t string) (string, string) {
	c := meta.FindStatusCondition(conds, t)
	if c == nil {
		return "Unknown", ""
	}
	return string(c.Status), c.Reason
}

// metadataPlacement is where a Store keeps its metadata: "device", "metadata-device" (a separate
// metadata device), "state-dir" (a store made before metadata moved onto devices, which mounts
// only on its node) or "-" when not reported.
func metadataPlacement(m *storagev1alpha1.StoreMetadata) string {
	switch {
	case m == nil:
		return "-"
	case m.Placement == storagev1alpha1.MetadataOnDevice:
		return "device"
	case m.Placement == storagev1alpha1.MetadataOnSeparateDevice:
		return "metadata-device"
	case m.Placement == storagev1alpha1.MetadataInStateDirectory:
		return "state-dir"
	}
	return string(m.Placement)
}

// claimOf is "namespace/name" of the PersistentVolumeClaim a Volume backs, as the CSI controller
// plugin records it, or "-" for a Volume not made for a claim.
func claimOf(v *storagev1alpha1.Volume) string {
	ns, name := v.Annotations[storagev1alpha1.KeyPVCNamespace], v.Annotations[storagev1alpha1.KeyPVCName]
	if name == "" {
		return "-"
	}
	return ns + "/" + name
}

// printStatus renders stores and volumes as two tables and a summary line.
func printStatus(out io.Writer, stores []storagev1alpha1.Store, vols []storagev1alpha1.Volume, now time.Time) error {
	sort.Slice(stores, func(i, j int) bool { return stores[i].Name < stores[j].Name })
	sort.Slice(vols, func(i, j int) bool {
		return vols[i].Namespace+"/"+vols[i].Name < vols[j].Namespace+"/"+vols[j].Name
	})
	perStore := map[string]int{}
	for i := range vols {
		for _, c := range volumeCopies(&vols[i]) {
			perStore[c.Store]++
		}
	}
	var total, used int64
	ready := 0
	var trouble []string // one line per store whose engine is not OK
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STORE\tNODE\tDEVICE\tCLASS\tADMIN\tREADY\tENGINE\tMETADATA\tCAPACITY\tUSED\tUSE%\tVOLUMES\tHEARTBEAT\tREASON")
	for _, s := range stores {
		engine := "-"
		if h := s.Status.EngineHealth; h != "" {
			engine = string(h)
			if h != storagev1alpha1.EngineHealthOK {
				trouble = append(trouble, fmt.Sprintf("store %s: engine %s: %s", s.Name, h, s.Status.EngineMessage))
			}
		}
		status, reason := condition(s.Status.Conditions, storagev1alpha1.ConditionReady)
		if status == "True" {
			ready++
		}
		capacity, usedB := int64(0), int64(0)
		if s.Status.Capacity != nil {
			capacity = s.Status.Capacity.Value()
		}
		if s.Status.Used != nil {
			usedB = s.Status.Used.Value()
		}
		total += capacity
		used += usedB
		pct := "-"
		if capacity > 0 {
			pct = fmt.Sprintf("%.1f%%", 100*float64(usedB)/float64(capacity))
		}
		hb := "never"
		if s.Status.LastHeartbeat != nil {
			hb = now.Sub(s.Status.LastHeartbeat.Time).Round(time.Second).String() + " ago"
		}
		if s.Status.NotUsedReason != "" {
			reason = s.Status.NotUsedReason
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Spec.NodeName, s.Spec.DevicePath,
			s.Spec.DeviceClass, s.Spec.AdminState, status, engine, metadataPlacement(s.Status.Metadata), humanBytes(capacity), humanBytes(usedB), pct,
			perStore[s.Name], hb, reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, l := range trouble {
		fmt.Fprintln(out, l)
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VOLUME\tCLAIM\tSIZE\tMODE\tSTORE\tNODE\tREPLICAS\tREADY\tREASON")
	volsReady, notInSync := 0, 0
	for _, v := range vols {
		status, reason := condition(v.Status.Conditions, storagev1alpha1.ConditionReady)
		if status == "True" {
			volsReady++
		}
		if v.Spec.Replicas > 1 && v.Status.InSyncReplicas < v.Spec.Replicas {
			notInSync++
		}
		store, node := copyColumns(&v)
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Namespace, v.Name, claimOf(&v), humanBytes(v.Spec.Size.Value()),
			v.Spec.VolumeMode, store, node, replicasColumn(&v), status, reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	health := "HEALTHY"
	if ready < len(stores) || volsReady < len(vols) || notInSync > 0 || len(trouble) > 0 {
		health = "DEGRADED"
	}
	if len(stores) == 0 {
		health = "NO STORES"
	}
	_, err := fmt.Fprintf(out, "\n%s: stores ready %d/%d, engines in trouble %d, volumes ready %d/%d, capacity %s, used %s\n",
		health, ready, len(stores), len(trouble), volsReady, len(vols), humanBytes(total), humanBytes(used))
	return err
}
