package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCommandName(t *testing.T) {
	for _, tc := range []struct{ argv0, want string }{
		{"cobalt", "cobalt"},
		{"/usr/local/bin/cobalt", "cobalt"},
		{"./bin/kubectl-cobalt", "kubectl cobalt"},
		{"/home/u/.krew/bin/kubectl-cobalt", "kubectl cobalt"},
		{"kubectl-cobalt_ctl", "kubectl cobalt-ctl"},
		{"kubectl-", "kubectl-"},
		{"cobalt-dev", "cobalt-dev"},
		{"", "cobalt"},
	} {
		if got := commandName(tc.argv0); got != tc.want {
			t.Errorf("commandName(%q) = %q, want %q", tc.argv0, got, tc.want)
		}
	}
}

// TestHelpNamesTheInvokedCommand: run as kubectl-cobalt, help and usage say `kubectl cobalt`,
// down to subcommands, and never a bare "cobalt volume" a kubectl user could not type.
func TestHelpNamesTheInvokedCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"kubectl cobalt", []string{"--help"}, []string{"kubectl cobalt [command]", "kubectl cobalt [command] --help"}},
		{"kubectl cobalt", []string{"volume", "write", "--help"}, []string{"kubectl cobalt volume write [VOLUME]"}},
		{"cobalt", []string{"--help"}, []string{"  cobalt [command]"}},
		{"cobalt", []string{"status", "--help"}, []string{"  cobalt status"}},
	} {
		t.Run(tc.name+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := newRootCommand(tc.name)
			var out bytes.Buffer
			cmd.SetArgs(tc.args)
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			if err := cmd.ExecuteContext(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("help does not contain %q:\n%s", w, out.String())
				}
			}
			if tc.name == "kubectl cobalt" && strings.Contains(strings.ReplaceAll(out.String(), "kubectl cobalt", ""), "cobalt ") {
				t.Errorf("help names the command without kubectl:\n%s", out.String())
			}
		})
	}
}
