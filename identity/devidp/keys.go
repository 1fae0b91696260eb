package devidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const rsaBits = 2048

// signingKey is the one RS256 key; it serves as op.SigningKey (private)
// and, through publicKey, as the single entry of the JWKS.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.kid }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.kid }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.priv.PublicKey }

var (
	_ op.SigningKey = (*signingKey)(nil)
	_ op.Key        = publicKey{}
)

// loadOrCreateKey reads the PEM key at path, or creates it (0600) when it
// does not exist. path "" gives a key for this process only. The kid is
// the key's RFC 7638 thumbprint, so it is the same after every restart.
func loadOrCreateKey(path string) (*signingKey, error) {
	if path != "" {
		priv, err := readKey(path)
		if err == nil {
			return newSigningKey(priv)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("devidp: generate signing key: %w", err)
	}
	if path != "" {
		if err := writeKey(path, priv); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
			// Another process created it first: use theirs so both agree.
			if priv, err = readKey(path); err != nil {
				return nil, err
			}
		}
	}
	return newSigningKey(priv)
}

func newSigningKey(priv *rsa.PrivateKey) (*signingKey, error) {
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devidp: key thumbprint: %w", err)
	}
	return &signingKey{kid: base64.RawURLEncoding.EncodeToString(tp), priv: priv}, nil
}

func readKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devidp: signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("devidp: signing key %s: no PEM block (delete the file to create a new key)", path)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		err = fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("devidp: signing key %s: %w (delete the file to create a new key)", path, err)
	}
	priv, ok := key.(*rsa.PrivateKey)
	if !ok || priv.N.BitLen() < rsaBits {
		return nil, fmt.Errorf("devidp: signing key %s: want an RSA key of at least %d bits", path, rsaBits)
	}
	return priv, nil
}

// writeKey creates path exclusively (O_EXCL), so two processes starting at
// once cannot overwrite each other's key.
func writeKey(path string, priv *rsa.PrivateKey) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("devidp: signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("devidp: signing key: %w", err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)}
	err = pem.Encode(f, block)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // a half-written key would fail every later start
		return fmt.Errorf("devidp: signing key: %w", err)
	}
	return nil
}
