package main

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// podTemplate is the part of a DaemonSet's or Deployment's pod template the demo needs to run
// its first container as a process.
type podTemplate struct {
	Spec struct {
		Template struct {
			Spec struct {
				ServiceAccountName string `json:"serviceAccountName"`
				Volumes            []struct {
					Name     string `json:"name"`
					HostPath *struct {
						Path string `json:"path"`
					} `json:"hostPath"`
				} `json:"volumes"`
				Containers []struct {
					Name         string   `json:"name"`
					Command      []string `json:"command"`
					Args         []string `json:"args"`
					VolumeMounts []struct {
						Name             string `json:"name"`
						MountPath        string `json:"mountPath"`
						MountPropagation string `json:"mountPropagation"`
					} `json:"volumeMounts"`
					Env []struct {
						Name      string `json:"name"`
						Value     string `json:"value"`
						ValueFrom *struct {
							FieldRef *struct {
								FieldPath string `json:"fieldPath"`
							} `json:"fieldRef"`
						} `json:"valueFrom"`
					} `json:"env"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// podCommand is how the demo runs a pod template's container on its node, as the kubelet would.
type podCommand struct {
	args           []string
	env            []string
	serviceAccount string
	// kubeletDir is the host directory the container mounts at the same path with Bidirectional
	// propagation, as a CSI node plugin mounts the kubelet's root directory so that its mounts
	// reach kubelet and Pods; "" when there is none.
	kubeletDir string
}

// downwardAPI is what the downward API would give a pod on the demo's node.
type downwardAPI struct{ node, namespace, name string }

func (p downwardAPI) field(path string) (string, error) {
	switch path {
	case "spec.nodeName":
		return p.node, nil
	case "metadata.namespace":
		return p.namespace, nil
	case "metadata.name":
		return p.name, nil
	case "status.podIP", "status.hostIP":
		return "127.0.0.1", nil
	}
	return "", fmt.Errorf("the pod uses the downward API field %s, which the demo does not provide", path)
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// parsePodCommand returns the first container's arguments (after the image's entrypoint) and
// environment of a DaemonSet or Deployment, with downward-API values from fieldRef and $(VAR)
// references expanded as the kubelet would.
func parsePodCommand(workloadJSON []byte, fieldRef func(path string) (string, error)) (podCommand, error) {
	var w podTemplate
	if err := json.Unmarshal(workloadJSON, &w); err != nil {
		return podCommand{}, fmt.Errorf("decode: %w", err)
	}
	containers := w.Spec.Template.Spec.Containers
	if len(containers) == 0 {
		return podCommand{}, fmt.Errorf("no container")
	}
	c := containers[0]
	vars := map[string]string{}
	cmd := podCommand{serviceAccount: w.Spec.Template.Spec.ServiceAccountName}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return podCommand{}, fmt.Errorf("env %s: only fieldRef values can be given outside a kubelet", e.Name)
			}
			var err error
			if v, err = fieldRef(e.ValueFrom.FieldRef.FieldPath); err != nil {
				return podCommand{}, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		vars[e.Name] = v
		cmd.env = append(cmd.env, e.Name+"="+v)
	}
	for _, m := range c.VolumeMounts {
		if m.MountPropagation != "Bidirectional" {
			continue
		}
		for _, v := range w.Spec.Template.Spec.Volumes {
			if v.Name == m.Name && v.HostPath != nil && v.HostPath.Path == m.MountPath {
				cmd.kubeletDir = m.MountPath
			}
		}
	}
	// command[0] is the binary the demo runs from bin/; the rest of command, then args, follow.
	for _, a := range append(c.Command[min(len(c.Command), 1):], c.Args...) {
		cmd.args = append(cmd.args, envRef.ReplaceAllStringFunc(a, func(ref string) string {
			if v, ok := vars[envRef.FindStringSubmatch(ref)[1]]; ok {
				return v
			}
			return ref // the kubelet leaves unknown references as they are
		}))
	}
	return cmd, nil
}
