package authz

import (
	"fmt"
	"strings"
)

// Policy is what a host behind forward auth requires of a session.
type Policy string

// The policies of forward-auth-rules.
const (
	OneFactor Policy = "one_factor" // any live session
	TwoFactor Policy = "two_factor" // a session that passed MFA (recently enough)
	Deny      Policy = "deny"       // nobody
)

// Rule gives one host, or every subdomain of a domain, a policy.
type Rule struct {
	Host     string // lower case, no port; for a wildcard the domain after "*."
	Wildcard bool   // "*.example.com": subdomains of Host, not Host itself
	Policy   Policy
}

func (r Rule) String() string {
	if r.Wildcard {
		return "*." + r.Host + "=" + string(r.Policy)
	}
	return r.Host + "=" + string(r.Policy)
}

// Rules are checked in order; the first that matches a host decides.
type Rules []Rule

// ParseRules reads forward-auth-rules: comma-separated HOST=POLICY, HOST exact or
// "*.domain", POLICY one_factor, two_factor or deny. Errors name the bad entry.
func ParseRules(s string) (Rules, error) {
	var rules Rules
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		host, pol, ok := strings.Cut(entry, "=")
		host, pol = strings.ToLower(strings.TrimSpace(host)), strings.TrimSpace(pol)
		if !ok {
			return nil, fmt.Errorf("forward-auth-rules: %q must be HOST=POLICY", entry)
		}
		switch Policy(pol) {
		case OneFactor, TwoFactor, Deny:
		default:
			return nil, fmt.Errorf("forward-auth-rules: %q: policy must be one_factor, two_factor or deny", entry)
		}
		r := Rule{Host: host, Policy: Policy(pol)}
		if strings.HasPrefix(host, "*.") {
			r.Host, r.Wildcard = host[2:], true
		}
		if !validHostname(r.Host) {
			return nil, fmt.Errorf("forward-auth-rules: %q: host must be a name like app.example.com or *.example.com, without a port", entry)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// String lists the rules as they would be configured.
func (rs Rules) String() string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// PolicyFor returns the policy of the first rule matching hostport (its port, if any,
// is ignored). A host no rule matches, or that is not a plain DNS name, is denied:
// forgetting a rule must never open an application.
func (rs Rules) PolicyFor(hostport string) Policy {
	host, _ := splitHostPort(hostport)
	host = strings.ToLower(host)
	if !validHostname(host) {
		return Deny
	}
	for _, r := range rs {
		if r.Wildcard {
			if strings.HasSuffix(host, "."+r.Host) {
				return r.Policy
			}
		} else if host == r.Host {
			return r.Policy
		}
	}
	return Deny
}

// Matched reports whether some rule names hostport, so a denial can say whether the
// host is denied on purpose or unknown.
func (rs Rules) Matched(hostport string) bool {
	host, _ := splitHostPort(hostport)
	host = strings.ToLower(host)
	for _, r := range rs {
		if (r.Wildcard && strings.HasSuffix(host, "."+r.Host)) || (!r.Wildcard && host == r.Host) {
			return true
		}
	}
	return false
}
