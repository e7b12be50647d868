package password

import (
	"strings"

	"github.com/trustelem/zxcvbn"
)

// MinScore is the zxcvbn score (0–4) a new password needs: 3 means "safely
// unguessable" against an online attack and a slow hash offline.
const MinScore = 3

// Weakness judges a new password with zxcvbn, whose frequency lists (common passwords,
// names, words, keyboard patterns) are what guessers try first. context holds what an
// attacker knows of the account: its username and email, the site's name. It returns
// "" for a strong enough password, otherwise why it is refused, in words fit for the
// user, after "password" (as Validate's messages are).
func Weakness(pw string, context ...string) string {
	inputs := make([]string, 0, 2*len(context))
	for _, c := range context {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "" {
			continue
		}
		inputs = append(inputs, c)
		// An email's local part and domain are guessed on their own too.
		if local, domain, ok := strings.Cut(c, "@"); ok {
			inputs = append(inputs, local, domain)
		}
	}
	r := zxcvbn.PasswordStrength(pw, inputs)
	if r.Score >= MinScore {
		return ""
	}
	why := "is too easy to guess"
	for _, m := range r.Sequence {
		// The largest part of the password names the reason.
		if len(m.Token)*2 < len(pw) {
			continue
		}
		switch {
		case m.Pattern == "dictionary" && m.DictionaryName == "user_inputs":
			why = "is too close to your username, email or the site's name"
		case m.Pattern == "dictionary" && m.DictionaryName == "passwords":
			why = "is one of the most common passwords, the first ones guessed"
		case m.Pattern == "dictionary":
			why = "is a common word or name, easy to guess"
		case m.Pattern == "sequence" || m.Pattern == "repeat":
			why = "is a sequence or repetition, easy to guess"
		case m.Pattern == "spatial":
			why = "is a keyboard pattern, easy to guess"
		case m.Pattern == "date":
			why = "is a date, easy to guess"
		}
		break
	}
	return why + ": try a few unrelated words, or let a password manager make one up"
}
