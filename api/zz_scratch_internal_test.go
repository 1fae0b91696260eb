package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/modelplane/modelplane"
)

type fixedAuth struct{}

func (fixedAuth) Authenticate(context.Context, string) (modelplane.Principal, error) {
	return modelplane.Principal{Name: "x", Method: "token"}, nil
}

func TestScratchSafetyNet(t *testing.T) {
	s := &Server{Auth: fixedAuth{}}
	s.Handler()
	s.echo.Add("GET", "/leak", s.authenticate(s.checkAuthorized(func(c echo.Context) error { return c.JSON(200, map[string]any{"secret": 1}) })))
	s.echo.Add("GET", "/bad", s.authenticate(s.checkAuthorized(func(c echo.Context) error { return modelplane.Errorf(modelplane.ENotFound, "nope") })))
	for _, p := range []string{"/leak", "/bad"} {
		req := httptest.NewRequest("GET", p, nil)
		req.Header.Set("Authorization", "Bearer x")
		rec := httptest.NewRecorder()
		s.echo.ServeHTTP(rec, req)
		t.Logf("%s -> %d %q %v", p, rec.Code, rec.Body.String(), rec.Header())
	}
	_ = http.StatusOK
}
