package devidp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// passwordAlphabet leaves out characters people confuse when copying a
// password from a terminal: 0/O/o, 1/l/I/i.
const passwordAlphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

const passwordLen = 16 // ≈ 92 bits from a 54-character alphabet

// LoadOrCreatePasswords returns a password for each of names. It reads
// "name password" lines from path (blank lines and # comments are kept),
// creates random passwords for names the file lacks, and rewrites the file
// atomically with mode 0600, so dev passwords survive restarts. Lines for
// other names are kept but not returned. path "" means in memory only:
// fresh passwords on every call.
func LoadOrCreatePasswords(path string, names []string) (map[string]string, error) {
	for _, n := range names {
		if n == "" || strings.ContainsFunc(n, isSpaceOrControl) {
			return nil, fmt.Errorf("devidp: password name %q must be non-empty without spaces", n)
		}
	}
	var lines []string
	known := map[string]string{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("devidp: passwords: %w", err)
		}
		if lines, err = parsePasswords(path, data, known); err != nil {
			return nil, err
		}
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		pw, ok := known[n]
		if !ok {
			var err error
			if pw, err = randomPassword(); err != nil {
				return nil, err
			}
			known[n] = pw
			lines = append(lines, n+" "+pw)
		}
		out[n] = pw
	}
	if path == "" {
		return out, nil
	}
	if err := writeFileAtomic(path, []byte(strings.Join(lines, "\n")+"\n")); err != nil {
		return nil, fmt.Errorf("devidp: passwords: %w", err)
	}
	return out, nil
}

// parsePasswords fills known and returns the file's lines. A malformed
// line is an error rather than being dropped: the file may have been
// edited by hand, and rewriting it must not lose anything.
func parsePasswords(path string, data []byte, known map[string]string) ([]string, error) {
	var lines []string
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		lines = append(lines, line)
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		f := strings.Fields(t)
		if len(f) != 2 {
			return nil, fmt.Errorf("devidp: %s:%d: want \"name password\"", path, i+1)
		}
		if _, dup := known[f[0]]; dup {
			return nil, fmt.Errorf("devidp: %s:%d: duplicate name %q", path, i+1, f[0])
		}
		known[f[0]] = f[1]
	}
	if len(data) == 0 {
		lines = nil
	}
	return lines, nil
}

// randomPassword draws uniformly from passwordAlphabet by rejection
// sampling (a plain modulo would favour the first letters).
func randomPassword() (string, error) {
	const limit = 256 - 256%len(passwordAlphabet)
	var b strings.Builder
	buf := make([]byte, 32)
	for b.Len() < passwordLen {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("devidp: %w", err)
		}
		for _, c := range buf {
			if int(c) < limit && b.Len() < passwordLen {
				b.WriteByte(passwordAlphabet[int(c)%len(passwordAlphabet)])
			}
		}
	}
	return b.String(), nil
}

// writeFileAtomic writes data to a 0600 temporary file next to path and
// renames it over path, so readers never see half a file and the mode is
// 0600 even if the old file's was wider.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o600) // CreateTemp's default, made explicit
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
