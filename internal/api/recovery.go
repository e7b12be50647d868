package api

import (
	"context"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// SSHKeyRequest is the body of POST /api/v1/ssh-keys.
type SSHKeyRequest struct {
	Title     string `json:"title"`
	PublicKey string `json:"public_key"`
}

// RecoveryRequest is the body of POST /api/v1/recovery.
type RecoveryRequest struct {
	Login string `json:"login"`
}

// RecoveryVerifyRequest is the body of POST /api/v1/recovery/{id}/verify: exactly one
// of the two proofs.
type RecoveryVerifyRequest struct {
	SSHSignature        string `json:"ssh_signature"`
	PersonalAccessToken string `json:"personal_access_token"`
}

// RecoveryCancelRequest is the body of POST /api/v1/recovery/cancel.
type RecoveryCancelRequest struct {
	Token string `json:"token"`
}

// RecoveryDecisionRequest is the body of an operator's approve or deny.
type RecoveryDecisionRequest struct {
	Reason string `json:"reason"`
}

func sshKeyJSON(k *auth.SSHKey) map[string]any {
	return map[string]any{"id": int64(k.ID), "title": k.Title, "fingerprint": k.Fingerprint,
		"public_key": k.PublicKey, "created_at": k.CreatedAt, "last_used_at": timeOrNil(k.LastUsedAt)}
}

// AddSSHKey registers an SSH public key.
func (h *Handler) AddSSHKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req SSHKeyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := h.svc.AddSSHKey(r.Context(), client(r), p, req.Title, req.PublicKey)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": int64(k.ID), "title": k.Title,
		"fingerprint": k.Fingerprint, "created_at": k.CreatedAt})
	return nil
}

// SSHKeys lists the caller's SSH keys.
func (h *Handler) SSHKeys(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	list, err := h.svc.SSHKeys(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for i := range list {
		out = append(out, sshKeyJSON(&list[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"ssh_keys": out})
	return nil
}

// DeleteSSHKey removes one of the caller's SSH keys.
func (h *Handler) DeleteSSHKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteSSHKey(r.Context(), client(r), p, auth.SSHKeyID(id)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// OpenRecovery opens a recovery request; unknown logins get the same answer.
func (h *Handler) OpenRecovery(w http.ResponseWriter, r *http.Request) error {
	var req RecoveryRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	ch, err := h.svc.OpenRecovery(r.Context(), client(r), req.Login)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"request_id": ch.ID, "challenge": ch.Challenge,
		"namespace": ch.Namespace, "expires_at": ch.ExpiresAt})
	return nil
}

// VerifyRecovery proves a recovery request with an SSH signature or a token.
func (h *Handler) VerifyRecovery(w http.ResponseWriter, r *http.Request) error {
	var req RecoveryVerifyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	v, err := h.svc.VerifyRecovery(r.Context(), client(r), auth.RecoveryRequestID(r.PathValue("id")),
		req.SSHSignature, req.PersonalAccessToken)
	if err != nil {
		return err
	}
	body := map[string]any{"status": auth.RecoveryVerified, "method": v.Method}
	if v.KeyFingerprint != "" {
		body["key_fingerprint"] = v.KeyFingerprint
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// CancelRecovery cancels a request with the owner's emailed token.
func (h *Handler) CancelRecovery(w http.ResponseWriter, r *http.Request) error {
	var req RecoveryCancelRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := h.svc.CancelRecovery(r.Context(), client(r), req.Token); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": auth.RecoveryCancelled})
	return nil
}

func recoveryRequestJSON(x *auth.RecoveryRequestInfo) map[string]any {
	var keyAge any
	if !x.KeyCreatedAt.IsZero() && !x.VerifiedAt.IsZero() {
		keyAge = int64(x.VerifiedAt.Sub(x.KeyCreatedAt) / time.Second)
	}
	return map[string]any{"id": x.ID, "user_id": int64(x.UserID), "username": x.Username, "email": x.Email,
		"status": x.Status, "method": x.Method, "key_fingerprint": x.KeyFingerprint,
		"key_created_at": timeOrNil(x.KeyCreatedAt), "key_age_seconds": keyAge, "token_name": x.TokenName,
		"ip": x.IP, "user_agent": x.UserAgent, "created_at": x.CreatedAt, "expires_at": x.ExpiresAt,
		"verified_at": timeOrNil(x.VerifiedAt), "decided_at": timeOrNil(x.DecidedAt), "reason": x.Reason,
		"failures": x.Failures, "cancel_link_used": !x.CancelledAt.IsZero(), "cancelled_at": timeOrNil(x.CancelledAt)}
}

// AdminRecoveryRequests lists recovery requests with their evidence (operators only).
func (h *Handler) AdminRecoveryRequests(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	list, err := h.svc.RecoveryRequests(r.Context(), p, r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for i := range list {
		out = append(out, recoveryRequestJSON(&list[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"recovery_requests": out})
	return nil
}

// ApproveRecovery approves a verified request (operators only, recent session).
func (h *Handler) ApproveRecovery(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.decide(w, r, p, h.svc.ApproveRecovery, auth.RecoveryApproved)
}

// DenyRecovery denies a request (operators only, recent session).
func (h *Handler) DenyRecovery(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.decide(w, r, p, h.svc.DenyRecovery, auth.RecoveryDenied)
}

// decision is ApproveRecovery or DenyRecovery of the Service.
type decision func(ctx context.Context, c auth.Client, p *auth.Principal, id auth.RecoveryRequestID, reason string) (*auth.User, error)

func (h *Handler) decide(w http.ResponseWriter, r *http.Request, p *auth.Principal, f decision, status string) error {
	var req RecoveryDecisionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	id := auth.RecoveryRequestID(r.PathValue("id"))
	u, err := f(r.Context(), client(r), p, id, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": status, "username": u.Username})
	return nil
}
