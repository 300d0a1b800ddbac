package main

import (
	"strings"
	"testing"
)

func TestParseManifests(t *testing.T) {
	stream := `apiVersion: v1
kind: Namespace
metadata:
  name: cobalt-system
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cobalt-controller-manager
  namespace: cobalt-system
spec:
  template:
    spec:
      serviceAccountName: cobalt-controller-manager
      containers:
      - name: manager
        args: [--leader-elect]
        env:
        - name: POD_NAMESPACE
          valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
`
	objs, err := parseManifests(stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].String() != "Namespace/cobalt-system" || objs[1].String() != "Deployment/cobalt-system/cobalt-controller-manager" {
		t.Fatalf("parsed %v", objs)
	}
	pod := downwardAPI{node: "n", namespace: objs[1].namespace, name: "p"}
	cmd, err := parsePodCommand(objs[1].json, pod.field)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cmd.args, " ") != "--leader-elect" || strings.Join(cmd.env, " ") != "POD_NAMESPACE=cobalt-system" || cmd.serviceAccount != "cobalt-controller-manager" {
		t.Errorf("pod command %+v", cmd)
	}
	if _, err := parseManifests("kind: ConfigMap\n"); err == nil {
		t.Error("accepted a manifest without a name")
	}
}
