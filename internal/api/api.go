// Package api is Latchkey's JSON API (SPEC §4). Each handler decodes one request type,
// calls one auth.Service method and encodes the answer; errors go back to one adapter
// that maps the domain's error kinds to statuses and safe messages.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/status"
)

// Handler serves the JSON API.
type Handler struct {
	svc *auth.Service
	log *slog.Logger
}

// New returns the API handlers.
func New(svc *auth.Service, log *slog.Logger) *Handler {
	return &Handler{svc: svc, log: log}
}

// Func is a handler that returns its error to the adapter.
type Func func(w http.ResponseWriter, r *http.Request) error

// Serve adapts a Func to http.Handler: the one place API errors become responses.
func (h *Handler) Serve(f Func) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			h.WriteError(w, r, err)
		}
	})
}

// Authed wraps f so that it runs only for an authenticated caller.
func (h *Handler) Authed(f func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error) http.Handler {
	return h.Serve(func(w http.ResponseWriter, r *http.Request) error {
		p := auth.PrincipalFrom(r.Context())
		if p == nil {
			return auth.ErrUnauthenticated
		}
		return f(w, r, p)
	})
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// WriteError writes the error envelope. Unknown errors become a bare 500 and the log
// gets the whole chain; nothing internal reaches the client.
func (h *Handler) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, r, h.log, err)
}

// WriteError is the shared error writer (the web package uses it for its JSON bits).
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	e := auth.AsError(err)
	if e == nil {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &auth.Error{Kind: auth.KindInternal, Code: "internal_error", Message: "Something went wrong on our side."}
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, status.Code(e.Kind), errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Fields: e.Fields}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// decode reads one JSON object into v. A body that is not JSON, has trailing data, or
// gives a field the wrong type (a code as a number, say) is a clear 400.
func decode(r *http.Request, v any) error {
	if r.Body == nil {
		return invalidBody("the body must be a JSON object")
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return &auth.Error{Kind: auth.KindTooLarge, Code: "body_too_large", Message: fmt.Sprintf("The body is larger than %d bytes.", mbe.Limit)}
		case errors.As(err, &te):
			return auth.InvalidInput(map[string]string{te.Field: "must be a " + jsonKind(te.Type.Kind().String())})
		case errors.Is(err, io.EOF):
			return invalidBody("the body must be a JSON object")
		default:
			return invalidBody("the body is not valid JSON")
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidBody("the body must hold exactly one JSON object")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch {
	case goKind == "string":
		return "string"
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "whole number"
	case goKind == "bool":
		return "boolean"
	}
	return "value of another type"
}

func invalidBody(msg string) error {
	return &auth.Error{Kind: auth.KindInvalidInput, Code: "invalid_input", Message: "The request " + msg + "."}
}

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, auth.ErrUnknownID
	}
	return id, nil
}

func client(r *http.Request) auth.Client { return auth.ClientFrom(r.Context()) }

// NotFound answers unknown API paths.
func (h *Handler) NotFound(w http.ResponseWriter, r *http.Request) error {
	return &auth.Error{Kind: auth.KindNotFound, Code: "not_found", Message: "No such API endpoint."}
}
