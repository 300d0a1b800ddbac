package main

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// TestBindFlagsReplication: replication is off unless --enable-replication says otherwise.
func TestBindFlagsReplication(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--enable-replication"}, true},
		{[]string{"--enable-replication=false"}, false},
	} {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		opts := bindFlags(fs, func(string) string { return "" })
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if opts.enableReplication != tc.want {
			t.Errorf("%v: replication %v, want %v", tc.args, opts.enableReplication, tc.want)
		}
	}
}

// TestRunWithoutReplication runs the manager with the default flags: a Volume with two replicas
// is neither placed nor created, and says why in its Ready condition.
func TestRunWithoutReplication(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "manager-replication-"}}
	g.Expect(testClient.Create(ctx, ns)).To(Succeed())

	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	env := map[string]string{"POD_NAMESPACE": ns.Name}
	opts := bindFlags(fs, func(k string) string { return env[k] })
	g.Expect(fs.Parse(nil)).To(Succeed())
	opts.metricsAddr, opts.probeAddr, opts.skipControllerNameValidation = "0", "0", true
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, testConfig, *opts) }()

	vol := &v1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "replicated"},
		Spec: v1alpha1.VolumeSpec{Size: resource.MustParse("1Gi"), Replicas: 2}}
	g.Expect(testClient.Create(ctx, vol)).To(Succeed())
	g.Eventually(func(g Gomega) metav1.Condition {
		got := &v1alpha1.Volume{}
		g.Expect(testClient.Get(ctx, client.ObjectKeyFromObject(vol), got)).To(Succeed())
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		return *c
	}, 20*time.Second, 100*time.Millisecond).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", v1alpha1.ReasonReplicationUnavailable),
		HaveField("Message", ContainSubstring("start the operator with --enable-replication"))))
	got := &v1alpha1.Volume{}
	g.Expect(testClient.Get(ctx, client.ObjectKeyFromObject(vol), got)).To(Succeed())
	g.Expect(got.Spec.StoreName).To(BeEmpty(), "not placed")
	g.Expect(got.Status.Replicas).To(BeEmpty())

	g.Expect(testClient.Delete(ctx, vol)).To(Succeed())
	g.Eventually(func() error { return testClient.Get(ctx, client.ObjectKeyFromObject(vol), &v1alpha1.Volume{}) },
		20*time.Second, 100*time.Millisecond).ShouldNot(Succeed(), "an unplaced Volume goes at once")
	stop()
	g.Eventually(done, 40*time.Second).Should(Receive(BeNil()), "the manager stops cleanly when its context ends")
}

// TestBindFlagsReplicaReplacementDelay: a Lost copy is replaced after 10 minutes unless
// --replica-replacement-delay says otherwise, and run refuses a delay that is not positive.
func TestBindFlagsReplicaReplacementDelay(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 10 * time.Minute},
		{[]string{"--replica-replacement-delay=90s"}, 90 * time.Second},
	} {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		opts := bindFlags(fs, func(string) string { return "" })
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if opts.replicaReplacementDelay != tc.want {
			t.Errorf("%v: delay %s, want %s", tc.args, opts.replicaReplacementDelay, tc.want)
		}
	}
	for _, d := range []time.Duration{0, -time.Second} {
		err := run(t.Context(), nil, options{heartbeatTimeout: time.Minute, replicaReplacementDelay: d, caSecret: "a/b"})
		if err == nil || !strings.Contains(err.Error(), "--replica-replacement-delay") {
			t.Errorf("run with delay %s = %v, want an error naming --replica-replacement-delay", d, err)
		}
	}
}
