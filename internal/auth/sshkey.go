package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/internal/recovery"
)

// AddSSHKey registers an SSH public key as a recovery factor. It is a credential
// change: a session signed in within the re-authentication window, never a token.
// The key is stored in authorized_keys form without its comment. A fingerprint is
// unique per account, not across accounts (unlike GitHub, where a key also names the
// account for git): here a key only proves identity for the account it is on, and
// global uniqueness would let anyone register a victim's public key first.
func (s *Service) AddSSHKey(ctx context.Context, c Client, p *Principal, title, publicKey string) (*SSHKey, error) {
	if err := s.requireRecent(p); err != nil {
		return nil, err
	}
	title = strings.TrimSpace(title)
	if title == "" || utf8.RuneCountInString(title) > 100 {
		return nil, InvalidInput(map[string]string{"title": "must be 1 to 100 characters"})
	}
	key, _, err := recovery.ParsePublicKey(publicKey)
	if err != nil {
		// The parser's messages are written for the user and never echo much input.
		return nil, &Error{Kind: KindInvalidInput, Code: "invalid_ssh_key", Message: err.Error(),
			Fields: map[string]string{"public_key": err.Error()}}
	}
	k := &SSHKey{UserID: p.User.ID, Title: title,
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))),
		Fingerprint: recovery.Fingerprint(key), CreatedAt: s.now()}
	if err := s.store.CreateSSHKey(ctx, k); errors.Is(err, ErrConflict) {
		s.event(ctx, p.User.ID, c, "ssh_key_added", "duplicate", k.Fingerprint)
		return nil, ErrDuplicateSSHKey
	} else if err != nil {
		return nil, fmt.Errorf("adding ssh key: %w", err)
	}
	s.event(ctx, p.User.ID, c, "ssh_key_added", "success", k.Fingerprint)
	s.notify(p.User, "An SSH key was added",
		"The SSH key %q (%s) was added to %s from %s. It can be used to prove who you are if you lose access to your account.\n\nIf this was not you, delete it at %s/settings/ssh-keys and change your password.",
		title, k.Fingerprint, p.User.Username, c.IP, s.cfg.PublicURL)
	return k, nil
}

// SSHKeys lists the caller's keys.
func (s *Service) SSHKeys(ctx context.Context, p *Principal) ([]SSHKey, error) {
	ks, err := s.store.ListSSHKeys(ctx, p.User.ID)
	if err != nil {
		return nil, fmt.Errorf("listing ssh keys: %w", err)
	}
	return ks, nil
}

// DeleteSSHKey removes one of the caller's keys. A token cannot: that is a credential
// change.
func (s *Service) DeleteSSHKey(ctx context.Context, c Client, p *Principal, id SSHKeyID) error {
	if err := requireSession(p); err != nil {
		return err
	}
	if err := s.store.DeleteSSHKey(ctx, p.User.ID, id); errors.Is(err, ErrNotFound) {
		return ErrUnknownID
	} else if err != nil {
		return fmt.Errorf("deleting ssh key: %w", err)
	}
	s.event(ctx, p.User.ID, c, "ssh_key_deleted", "success", fmt.Sprintf("ssh key %d", id))
	s.cancelRecovery(ctx, c, p.User, RecoveryMatch{KeyID: id}, "the SSH key that verified it was removed")
	s.notify(p.User, "An SSH key was deleted",
		"An SSH key of %s was deleted from %s.", p.User.Username, c.IP)
	return nil
}
