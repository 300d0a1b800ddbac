package chart

import (
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/pki"
)

// testCA returns a fresh CA's certificate and key in PEM, made by the same package the operator
// uses to load the CA Secret.
func testCA(t testing.TB) (certPEM, keyPEM string) {
	t.Helper()
	ca, err := pki.NewCA("cobalt-chart-test", time.Now(), time.Hour)
	if err != nil {
		t.Fatalf("new CA: %v", err)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatalf("CA key PEM: %v", err)
	}
	return string(ca.CertPEM()), string(key)
}

// TestProvidedCASecretLoadsAsTheOperatorReadsIt renders the CA Secret from a user-provided CA and
// parses it the way the operator and node daemons do.
func TestProvidedCASecretLoadsAsTheOperatorReadsIt(t *testing.T) {
	r := mustRender(t, allOptions(t))
	secret := find(t, r.objects, "Secret", "cobalt-ca")
	if got, ok := secret.GetAnnotations()["helm.sh/resource-policy"]; ok {
		t.Errorf("CA Secret resource-policy = %q, want none: helm uninstall deletes the CA the values hold", got)
	}
	data := decodeSecretData(t, secret)
	if _, err := pki.ParseCA(data[pki.SecretCertKey], data[pki.SecretKeyKey]); err != nil {
		t.Fatalf("the rendered CA Secret does not load with pki.ParseCA: %v", err)
	}
}

// TestNoCASecretByDefault: by default the operator creates the CA at runtime, so the chart renders
// no Secret that could later be replaced by an upgrade.
func TestNoCASecretByDefault(t *testing.T) {
	r := mustRender(t, nil)
	for _, o := range r.objects {
		if o.GetKind() == "Secret" {
			t.Errorf("default values render Secret %s; the operator creates the CA itself", o.GetName())
		}
	}
}
