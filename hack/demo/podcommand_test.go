package main

import (
	"slices"
	"testing"
)

const sampleDaemonSet = `{"spec":{"template":{"spec":{
  "serviceAccountName":"demo-node-daemon",
  "containers":[{"name":"node-daemon","image":"x",
    "args":["--cluster-name=demo","--node-name=$(NODE_NAME)","--ip=$(POD_IP)","--keep=$(UNKNOWN)"],
    "env":[{"name":"NODE_NAME","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}},
           {"name":"POD_IP","valueFrom":{"fieldRef":{"fieldPath":"status.podIP"}}},
           {"name":"PLAIN","value":"v"}]}]}}}}`

func TestParsePodCommandExpandsLikeTheKubelet(t *testing.T) {
	pod := downwardAPI{node: "demo-node-1", namespace: "cobalt-demo", name: "p"}
	cmd, err := parsePodCommand([]byte(sampleDaemonSet), pod.field)
	if err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{"--cluster-name=demo", "--node-name=demo-node-1", "--ip=127.0.0.1", "--keep=$(UNKNOWN)"}
	if !slices.Equal(cmd.args, wantArgs) {
		t.Errorf("args = %v, want %v", cmd.args, wantArgs)
	}
	wantEnv := []string{"NODE_NAME=demo-node-1", "POD_IP=127.0.0.1", "PLAIN=v"}
	if !slices.Equal(cmd.env, wantEnv) {
		t.Errorf("env = %v, want %v", cmd.env, wantEnv)
	}
	if cmd.serviceAccount != "demo-node-daemon" {
		t.Errorf("serviceAccount = %q", cmd.serviceAccount)
	}
}

func TestParsePodCommandRefusesWhatItCannotProvide(t *testing.T) {
	for name, doc := range map[string]string{
		"no container":  `{"spec":{"template":{"spec":{"containers":[]}}}}`,
		"not JSON":      `{`,
		"secret env":    `{"spec":{"template":{"spec":{"containers":[{"env":[{"name":"X","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}]}}}}`,
		"unknown field": `{"spec":{"template":{"spec":{"containers":[{"env":[{"name":"X","valueFrom":{"fieldRef":{"fieldPath":"metadata.uid"}}}]}]}}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			pod := downwardAPI{node: "n", namespace: "ns", name: "p"}
			if _, err := parsePodCommand([]byte(doc), pod.field); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParsePodCommandFindsTheKubeletDirectory(t *testing.T) {
	const ds = `{"spec":{"template":{"spec":{
  "volumes":[{"name":"state","hostPath":{"path":"/var/lib/cobalt"}},
             {"name":"kubelet-dir","hostPath":{"path":"/var/lib/kubelet","type":"Directory"}},
             {"name":"dev","hostPath":{"path":"/dev"}}],
  "containers":[{"name":"node-daemon","volumeMounts":[
    {"name":"state","mountPath":"/var/lib/cobalt"},
    {"name":"dev","mountPath":"/dev","mountPropagation":"HostToContainer"},
    {"name":"kubelet-dir","mountPath":"/var/lib/kubelet","mountPropagation":"Bidirectional"}]}]}}}}`
	pod := downwardAPI{node: "n", namespace: "ns", name: "p"}
	cmd, err := parsePodCommand([]byte(ds), pod.field)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.kubeletDir != "/var/lib/kubelet" {
		t.Errorf("kubeletDir = %q, want /var/lib/kubelet (the Bidirectional hostPath mount)", cmd.kubeletDir)
	}
	// Without a Bidirectional mount of a host directory at its own path there is no kubelet dir.
	cmd, err = parsePodCommand([]byte(sampleDaemonSet), pod.field)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.kubeletDir != "" {
		t.Errorf("kubeletDir = %q for a pod without a Bidirectional hostPath mount", cmd.kubeletDir)
	}
}
