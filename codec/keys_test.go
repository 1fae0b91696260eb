package codec_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelplane/modelplane/codec"
)

// keyMaterial returns renderings of a base64 key that must never show up in
// output: the text itself, its other base64 forms, hex, raw bytes and fmt's
// decimal byte list.
func keyMaterial(t *testing.T, b64 string) []string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		b64,
		base64.RawStdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		hex.EncodeToString(raw),
		string(raw),
		strings.Trim(fmt.Sprint(raw[:8]), "[]"),
		fmt.Sprintf("%x", raw[:8]),
	}
}

// leak returns the first rendering of any of keys found in out, or "".
func leak(t *testing.T, out string, keys ...string) string {
	t.Helper()
	for _, k := range keys {
		for _, m := range keyMaterial(t, k) {
			if strings.Contains(out, m) {
				return m
			}
		}
	}
	return ""
}

func assertNoKeyMaterial(t *testing.T, out string, keys ...string) {
	t.Helper()
	if m := leak(t, out, keys...); m != "" {
		t.Fatalf("output leaks key material %q:\n%s", m, out)
	}
}

func TestNewKeyIsRandom32Bytes(t *testing.T) {
	a, b := codec.NewKey(), codec.NewKey()
	raw, err := base64.StdEncoding.DecodeString(a)
	if err != nil || len(raw) != codec.KeySize {
		t.Fatalf("NewKey() = %q: %d bytes, err %v", a, len(raw), err)
	}
	if a == b {
		t.Fatal("two NewKey calls returned the same key")
	}
}

func TestParseKeysOrderAndEncodings(t *testing.T) {
	k1, k2, k3 := codec.NewKey(), codec.NewKey(), codec.NewKey()
	raw3, _ := base64.StdEncoding.DecodeString(k3)
	url3 := base64.RawURLEncoding.EncodeToString(raw3) // URL-safe, unpadded
	kr, err := codec.ParseKeys(" k-2024.2 :" + k2 + ", k1:" + k1 + ",legacy_0:" + url3 + ",")
	if err != nil {
		t.Fatal(err)
	}
	if got := kr.ActiveID(); got != "k-2024.2" {
		t.Fatalf("ActiveID = %q, want the first entry", got)
	}
	if got := strings.Join(kr.IDs(), ","); got != "k-2024.2,k1,legacy_0" {
		t.Fatalf("IDs = %s", got)
	}
}

func TestParseKeysErrorsNameEntryNotKey(t *testing.T) {
	good := codec.NewKey()
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	zero := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name, in string
		want     []string // substrings of the error
		secret   string   // must not appear in the error
	}{
		{"empty", "", []string{"no keys"}, ""},
		{"no colon", "k1:" + good + "," + good, []string{"entry 2", "want id:base64key"}, good},
		{"swapped", good + ":k1", []string{"entry 1", "looks like a key"}, good},
		{"short key", "k1:" + good + ",k2:" + short, []string{"entry 2", `"k2"`, "32 bytes"}, short},
		{"not base64", "k1:!!!not-base64!!!", []string{"entry 1", `"k1"`, "32 bytes"}, "!!!not-base64!!!"},
		{"zero key", "k1:" + zero, []string{"entry 1", `"k1"`, "all zero"}, zero},
		{"empty key", "k1:", []string{"entry 1", `"k1"`, "empty key"}, ""},
		{"empty id", ":" + good, []string{"entry 1", "empty key id"}, good},
		{"bad id", "k 1:" + good, []string{"entry 1", "only letters"}, good},
		{"duplicate id", "k1:" + good + ",k1:" + codec.NewKey(), []string{"entry 2", `"k1"`, "duplicate id"}, good},
		{"reused key", "new:" + good + ",old:" + good, []string{"entry 2", `"old"`, "same key as entry 1", `"new"`}, good},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kr, err := codec.ParseKeys(c.in)
			if err == nil {
				t.Fatalf("ParseKeys accepted %s: %v", c.name, kr)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if c.secret != "" && strings.Contains(err.Error(), c.secret) {
				t.Errorf("error %q prints the key", err)
			}
		})
	}
}

func TestLoadKeys(t *testing.T) {
	k1, k2 := codec.NewKey(), codec.NewKey()
	dir := t.TempDir()
	file := filepath.Join(dir, "keys")
	content := "# modelplane codec keys, active first\n\nk2:" + k2 + "\r\n  # retired 2024-01\nk1:" + k1 + "\n"
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("file", func(t *testing.T) {
		kr, err := codec.LoadKeys("", file)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(kr.IDs(), ","); got != "k2,k1" {
			t.Fatalf("IDs = %s", got)
		}
	})
	t.Run("env", func(t *testing.T) {
		kr, err := codec.LoadKeys("k1:"+k1, "")
		if err != nil || kr.ActiveID() != "k1" {
			t.Fatalf("kr %v, err %v", kr, err)
		}
	})
	t.Run("neither means off", func(t *testing.T) {
		kr, err := codec.LoadKeys(" ", "")
		if kr != nil || err != nil {
			t.Fatalf("want nil keyring and no error, got %v, %v", kr, err)
		}
	})
	t.Run("both is ambiguous", func(t *testing.T) {
		_, err := codec.LoadKeys("k1:"+k1, file)
		if err == nil || !strings.Contains(err.Error(), codec.EnvKeys) || !strings.Contains(err.Error(), codec.EnvKeysFile) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("file error names line", func(t *testing.T) {
		bad := filepath.Join(dir, "bad")
		if err := os.WriteFile(bad, []byte("# c\nk1:"+k1+"\nk2:"+k1[:20]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := codec.LoadKeys("", bad)
		if err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), `"k2"`) {
			t.Fatalf("err = %v", err)
		}
		assertNoKeyMaterial(t, err.Error(), k1)
		if strings.Contains(err.Error(), k1[:20]) {
			t.Fatalf("error prints the truncated key: %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		if _, err := codec.LoadKeys("", filepath.Join(dir, "nope")); err == nil {
			t.Fatal("missing file accepted")
		}
	})
	t.Run("from environment", func(t *testing.T) {
		t.Setenv(codec.EnvKeys, "")
		t.Setenv(codec.EnvKeysFile, file)
		kr, err := codec.LoadKeysFromEnv()
		if err != nil || kr.ActiveID() != "k2" {
			t.Fatalf("kr %v, err %v", kr, err)
		}
	})
}

func TestKeyringRedactsEverywhere(t *testing.T) {
	k1, k2 := codec.NewKey(), codec.NewKey()
	kr, err := codec.ParseKeys("k2:" + k2 + ",k1:" + k1)
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		hidden  codec.Keyring // unexported: fmt cannot call its methods
		Shown   *codec.Keyring
		private *codec.Keyring
	}
	h := holder{hidden: *kr, Shown: kr, private: kr}
	// Control: the detector does see key bytes when they are printed.
	raw, _ := base64.StdEncoding.DecodeString(k1)
	if leak(t, fmt.Sprintf("%v", raw), k1) == "" || leak(t, fmt.Sprintf("%x", raw), k1) == "" {
		t.Fatal("leak detector misses printed key bytes")
	}

	verbs := fmt.Sprintf("%v %+v %#v %s %q %x %X %d", kr, kr, kr, kr, kr, kr, kr, kr)
	if n := strings.Count(verbs, "REDACTED"); n != 8 {
		t.Fatalf("want the redacted form for all 8 verbs, got %d:\n%s", n, verbs)
	}
	var out strings.Builder
	out.WriteString(verbs + "\n")
	fmt.Fprintf(&out, "%v %+v %#v %s\n", *kr, *kr, *kr, *kr)
	fmt.Fprintf(&out, "%v %+v %#v\n", h, h, h)
	fmt.Fprintf(&out, "%+v %#v\n", []*codec.Keyring{kr}, map[string]codec.Keyring{"a": *kr})
	fmt.Fprintln(&out, kr, *kr, kr.String(), kr.GoString())
	slog.New(slog.NewTextHandler(&out, nil)).Info("keys", "kr", kr, "val", *kr, "h", h)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("keys", "kr", kr, "val", *kr, "h", h)

	assertNoKeyMaterial(t, out.String(), k1, k2)
	if !strings.Contains(out.String(), "REDACTED") || !strings.Contains(out.String(), "k2") {
		t.Fatalf("redacted form should still name the ids:\n%s", out.String())
	}
}
