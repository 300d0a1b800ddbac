package pki

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the CA Secret's data.
const (
	SecretCertKey = "ca.crt"
	SecretKeyKey  = "ca.key"
)

// DefaultCAValidity is the lifetime of a CA created by EnsureCASecret.
const DefaultCAValidity = 10 * 365 * 24 * time.Hour

// DefaultLeafValidity is the lifetime of the leaf certificates the operator and daemons issue
// themselves at start-up (they are re-issued on every start).
const DefaultLeafValidity = 365 * 24 * time.Hour

// EnsureCASecret returns the CA stored in the Secret key, creating the Secret with a new CA when it
// does not exist. An existing Secret is never overwritten: if it cannot be parsed, that is an error.
// Concurrent callers converge on whichever CA was created first.
func EnsureCASecret(ctx context.Context, c client.Client, key types.NamespacedName, now time.Time) (*CA, error) {
	ca, err := LoadCASecret(ctx, c, key)
	if err == nil {
		return ca, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	ca, err = NewCA("cobalt-ca", now, DefaultCAValidity)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace,
			Name:      key.Name,
			Labels:    map[string]string{"app.kubernetes.io/part-of": "cobalt", "app.kubernetes.io/component": "ca"},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{SecretCertKey: ca.CertPEM(), SecretKeyKey: keyPEM},
	}
	if err := c.Create(ctx, secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return LoadCASecret(ctx, c, key)
		}
		return nil, fmt.Errorf("pki: create CA secret %s: %w", key, err)
	}
	return ca, nil
}

// LoadCASecret reads the CA from the Secret key. A missing Secret is reported as a NotFound API
// error (apierrors.IsNotFound).
func LoadCASecret(ctx context.Context, r client.Reader, key types.NamespacedName) (*CA, error) {
	var secret corev1.Secret
	if err := r.Get(ctx, key, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, fmt.Errorf("pki: get CA secret %s: %w", key, err)
	}
	ca, err := ParseCA(secret.Data[SecretCertKey], secret.Data[SecretKeyKey])
	if err != nil {
		return nil, fmt.Errorf("pki: CA secret %s: %w", key, err)
	}
	return ca, nil
}
