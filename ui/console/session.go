package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

const (
	sessionCookie = "mp_console"
	loginCookie   = "mp_console_login"
)

// session is what the console keeps for a signed-in person, sealed in an
// HttpOnly cookie: the token the API verifies on every call, and the CSRF
// token every form carries. The identity always comes from the token.
type session struct {
	Token   string    `json:"t"`
	CSRF    string    `json:"c"`
	Expires time.Time `json:"e"`
}

// sealer encrypts and authenticates cookie values (AES-256-GCM), so a
// session can be neither read nor forged by the browser.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("console: session key must be 32 bytes")
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: a}, nil
}

// seal binds the value to its cookie name, so one cookie cannot stand in for another.
func (s *sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

func (s *sealer) open(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return errors.New("malformed cookie")
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(name))
	if err != nil {
		return errors.New("cookie not sealed by this console")
	}
	return json.Unmarshal(plain, v)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Console) setCookie(w http.ResponseWriter, name, value, path string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, Expires: expires, HttpOnly: true, Secure: c.secure,
		// Lax: the provider's redirect back to /auth/callback is a top-level
		// GET that must carry the login cookie; no POST crosses sites.
		SameSite: http.SameSiteLaxMode})
}

func (c *Console) clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
}

// startSession signs the bearer in: it must be one the API accepts.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, token string) error {
	p, err := c.auth.Authenticate(r.Context(), token)
	if err != nil {
		return err
	}
	exp := time.Now().Add(12 * time.Hour)
	if p.Expires != nil && p.Expires.Before(exp) {
		exp = *p.Expires
	}
	v, err := c.seal.seal(sessionCookie, session{Token: token, CSRF: randomToken(), Expires: exp})
	if err != nil {
		return err
	}
	c.setCookie(w, sessionCookie, v, "/", exp)
	return nil
}

// signedIn reads the session and verifies its token again, so an expired
// token or a revoked credential ends the session at once.
func (c *Console) signedIn(w http.ResponseWriter, r *http.Request) (*req, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, false
	}
	var s session
	if err := c.seal.open(sessionCookie, ck.Value, &s); err != nil || time.Now().After(s.Expires) {
		c.clearCookie(w, sessionCookie, "/")
		return nil, false
	}
	p, err := c.auth.Authenticate(r.Context(), s.Token)
	if err != nil {
		c.clearCookie(w, sessionCookie, "/")
		return nil, false
	}
	return &req{c: c, w: w, r: r, sess: &s, who: p}, true
}

// checkCSRF requires the session's token in the form and, when the browser
// says where the request came from, that it came from the console itself.
func (c *Console) checkCSRF(r *req) error {
	if o := r.r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.r.Host {
			return errors.New("the form was posted from another site (" + o + ")")
		}
	}
	if err := r.r.ParseForm(); err != nil {
		return errors.New("the form could not be read")
	}
	got := r.r.PostForm.Get("csrf")
	if got == "" || !hmac.Equal([]byte(got), []byte(r.sess.CSRF)) {
		return errors.New("the form's security token is missing or stale; reload the page and try again")
	}
	return nil
}
