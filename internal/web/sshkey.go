package web

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/recovery"
	"github.com/latchkey/latchkey/internal/status"
)

// sshKeysData is the SSH keys page.
type sshKeysData struct {
	Keys []auth.SSHKey
}

// SSHKeys lists the SSH keys that can prove the user's identity in recovery.
func (h *Handler) SSHKeys(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.renderSSHKeys(w, r, p, http.StatusOK, nil)
}

func (h *Handler) renderSSHKeys(w http.ResponseWriter, r *http.Request, p *auth.Principal, status int, fill func(*page)) error {
	keys, err := h.svc.SSHKeys(r.Context(), p)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "SSH keys")
	pg.Data = sshKeysData{Keys: keys}
	if fill != nil {
		fill(pg)
	}
	h.render(w, status, "ssh_keys", pg)
	return nil
}

// AddSSHKey registers a key. The parser's problem (a private key pasted, DSA, two
// lines…) is shown next to the key field with what was pasted, so it can be fixed.
func (h *Handler) AddSSHKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	title, key := strings.TrimSpace(r.PostFormValue("title")), r.PostFormValue("public_key")
	if _, err := h.svc.AddSSHKey(r.Context(), client(r), p, title, key); err != nil {
		e := auth.AsError(err)
		if e == nil || (e.Kind != auth.KindInvalidInput && e.Kind != auth.KindConflict) {
			return err
		}
		return h.renderSSHKeys(w, r, p, status.Code(e.Kind), func(pg *page) {
			pg.Values["title"], pg.Values["public_key"] = title, key
			if e.Code == "invalid_ssh_key" {
				// "invalid SSH public key: more than one line" reads better as the reason alone.
				pg.Fields["public_key"] = sentence(strings.TrimPrefix(e.Message, recovery.ErrInvalidKey.Error()+": "))
				pg.Error = "That is not a public key we can use. See the problem next to Public key."
				return
			}
			pg.formError(err, "public_key")
		})
	}
	redirect(w, r, "/settings/ssh-keys?done=ssh_key_added")
	return nil
}

// DeleteSSHKey removes one of the user's SSH keys.
func (h *Handler) DeleteSSHKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errNotFound
	}
	if err := h.svc.DeleteSSHKey(r.Context(), client(r), p, auth.SSHKeyID(id)); err != nil {
		return err
	}
	redirect(w, r, "/settings/ssh-keys?done=ssh_key_deleted")
	return nil
}

// sentence makes a parser's message ("invalid SSH public key: more than one line")
// read as a sentence on the page: a capital first letter and a full stop.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return ""
	}
	first, n := utf8.DecodeRuneInString(msg)
	msg = string(unicode.ToUpper(first)) + msg[n:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
