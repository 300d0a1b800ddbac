package main

import (
	"path/filepath"
	"strings"
)

// commandName is the name help and usage texts give the CLI, from the path it was run as
// (argv[0]): a binary named kubectl-cobalt is run by kubectl as `kubectl cobalt`, so it says
// "kubectl cobalt"; under any other name it says that name, and "cobalt" when there is none.
// It follows kubectl's plugin naming: in the part after "kubectl-", a dash separates words of
// the command and an underscore stands for a dash.
func commandName(argv0 string) string {
	base := filepath.Base(argv0)
	if base == "." || base == "/" || base == "" {
		return "cobalt"
	}
	if rest, ok := strings.CutPrefix(base, "kubectl-"); ok && rest != "" {
		return "kubectl " + strings.ReplaceAll(strings.ReplaceAll(rest, "-", " "), "_", "-")
	}
	return base
}
