package codec

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Environment variables that carry the keys. Only one of them may be set.
const (
	EnvKeys     = "MODELPLANE_CODEC_KEYS"      // "id1:base64key,id2:base64key"
	EnvKeysFile = "MODELPLANE_CODEC_KEYS_FILE" // path to a file with one "id:base64key" per line
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

const maxIDLen = 64

// Keyring holds the AES-256-GCM keys by id. The first key is the active one:
// it encrypts every new payload. Every key decrypts, so rotating is "put the
// new key first, keep the old ones until nothing encrypted with them is read".
//
// A Keyring is immutable and safe for concurrent use. It redacts itself under
// every fmt verb and in slog, so logging one never shows key material.
type Keyring struct {
	ids  []string // in configured order; ids[0] is active
	keys map[string]*key
}

// key is held by pointer so that even a Keyring buried in another value's
// unexported field prints as an address under fmt, not as cipher state.
type key struct {
	aead cipher.AEAD
}

// NewKey returns a fresh random 32-byte key, base64 (standard) encoded.
func NewKey() string {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.StdEncoding.EncodeToString(b)
}

// ParseKeys parses "id1:base64key,id2:base64key". Keys are 32 bytes in
// standard or URL-safe base64, padded or not. The first entry is the active
// key. Errors name the entry number and id, never the key.
func ParseKeys(s string) (*Keyring, error) {
	var es []entry
	for i, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue // tolerate "a:..,b:..," and stray spaces
		}
		es = append(es, entry{where: fmt.Sprintf("entry %d", i+1), text: part})
	}
	kr, err := build(es)
	if err != nil {
		return nil, fmt.Errorf("codec keys: %w", err)
	}
	return kr, nil
}

// LoadKeys reads keys from env (a ParseKeys string, usually the value of
// MODELPLANE_CODEC_KEYS) or from file (one "id:base64key" per line, blank
// lines and lines starting with '#' ignored; usually the value of
// MODELPLANE_CODEC_KEYS_FILE). Setting both is an error because it is
// ambiguous which one wins. Setting neither returns a nil Keyring and no
// error: encryption is off.
func LoadKeys(env string, file string) (*Keyring, error) {
	env, file = strings.TrimSpace(env), strings.TrimSpace(file)
	switch {
	case env != "" && file != "":
		return nil, fmt.Errorf("codec keys: both %s and %s are set; set one", EnvKeys, EnvKeysFile)
	case env != "":
		return ParseKeys(env)
	case file == "":
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("codec keys: %w", err)
	}
	var es []entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		es = append(es, entry{where: fmt.Sprintf("line %d", n), text: line})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("codec keys file %s: %w", file, err)
	}
	kr, err := build(es)
	if err != nil {
		return nil, fmt.Errorf("codec keys file %s: %w", file, err)
	}
	return kr, nil
}

// LoadKeysFromEnv is LoadKeys(os.Getenv(EnvKeys), os.Getenv(EnvKeysFile)).
func LoadKeysFromEnv() (*Keyring, error) {
	return LoadKeys(os.Getenv(EnvKeys), os.Getenv(EnvKeysFile))
}

// ActiveID is the id of the key that encrypts new payloads.
func (kr *Keyring) ActiveID() string {
	if kr == nil || len(kr.ids) == 0 {
		return ""
	}
	return kr.ids[0]
}

// IDs lists the key ids, active first.
func (kr *Keyring) IDs() []string {
	if kr == nil {
		return nil
	}
	return append([]string(nil), kr.ids...)
}

// String describes the keyring by ids only.
func (kr Keyring) String() string {
	return fmt.Sprintf("codec.Keyring{active: %q, ids: %q, keys: REDACTED}", kr.ActiveID(), kr.ids)
}

// GoString keeps %#v from dumping the cipher state (which holds the key schedule).
func (kr Keyring) GoString() string { return kr.String() }

// Format makes every verb (%v %+v %#v %s %x %q ...) print the redacted form.
// Value receivers so that printing a dereferenced Keyring is covered too.
func (kr Keyring) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(kr.String())) }

// LogValue gives slog the ids and nothing else.
func (kr Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.String("active", kr.ActiveID()), slog.Any("ids", kr.ids))
}

func (kr *Keyring) aead(id string) (cipher.AEAD, bool) {
	if kr == nil {
		return nil, false
	}
	k, ok := kr.keys[id]
	if !ok {
		return nil, false
	}
	return k.aead, true
}

type entry struct {
	where string // "entry 2" or "line 7", for error messages
	text  string
}

func build(es []entry) (*Keyring, error) {
	if len(es) == 0 {
		return nil, errors.New("no keys given (want id:base64key)")
	}
	kr := &Keyring{keys: make(map[string]*key, len(es))}
	// By digest, to catch a copy-pasted old key without keeping key copies around.
	seen := make(map[[sha256.Size]byte]string, len(es))
	for _, e := range es {
		id, raw, err := parseEntry(e)
		if err != nil {
			return nil, err
		}
		if _, dup := kr.keys[id]; dup {
			clear(raw)
			return nil, fmt.Errorf("%s (id %q): duplicate id", e.where, id)
		}
		sum := sha256.Sum256(raw)
		if prev, dup := seen[sum]; dup {
			clear(raw)
			// A "new" key equal to an old one would be a rotation that rotates nothing.
			return nil, fmt.Errorf("%s (id %q): same key as %s", e.where, id, prev)
		}
		seen[sum] = fmt.Sprintf("%s (id %q)", e.where, id)
		block, err := aes.NewCipher(raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("%s (id %q): %v", e.where, id, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s (id %q): %v", e.where, id, err)
		}
		kr.ids = append(kr.ids, id)
		kr.keys[id] = &key{aead: gcm}
	}
	return kr, nil
}

func parseEntry(e entry) (id string, key []byte, err error) {
	rawID, rawKey, ok := strings.Cut(e.text, ":")
	if !ok {
		// Do not echo the text: it is most likely a bare key.
		return "", nil, fmt.Errorf("%s: want id:base64key", e.where)
	}
	id, rawKey = strings.TrimSpace(rawID), strings.TrimSpace(rawKey)
	if _, isKey := decodeKey(id); isKey {
		// Swapped order ("key:id"): naming the "id" would print the key.
		return "", nil, fmt.Errorf("%s: the id looks like a key; the format is id:base64key", e.where)
	}
	if err := validID(id); err != nil {
		return "", nil, fmt.Errorf("%s: %w", e.where, err)
	}
	if rawKey == "" {
		return "", nil, fmt.Errorf("%s (id %q): empty key", e.where, id)
	}
	key, ok = decodeKey(rawKey)
	if !ok {
		return "", nil, fmt.Errorf("%s (id %q): key must be %d bytes of base64 (generate one with codec.NewKey or `openssl rand -base64 32`)", e.where, id, KeySize)
	}
	if allZero(key) {
		return "", nil, fmt.Errorf("%s (id %q): key is all zero bytes (a placeholder?)", e.where, id)
	}
	return id, key, nil
}

// decodeKey accepts standard and URL-safe base64, with or without padding,
// and reports whether the result is a KeySize key.
func decodeKey(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) == KeySize {
				return b, true
			}
			clear(b)
		}
	}
	return nil, false
}

// validID keeps ids short and printable: they go into payload metadata, AAD
// and error messages.
func validID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("key id longer than %d characters", maxIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key id %q: only letters, digits, '-', '_' and '.' are allowed", id)
		}
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
