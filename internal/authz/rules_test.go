package authz

import "testing"

func TestParseRules(t *testing.T) {
	rs, err := ParseRules(" Grafana.Example.com=two_factor, *.example.com=one_factor,admin.example.com=deny,,")
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.String(); got != "grafana.example.com=two_factor,*.example.com=one_factor,admin.example.com=deny" {
		t.Fatalf("ParseRules = %q", got)
	}
	if rs, err := ParseRules(""); err != nil || len(rs) != 0 {
		t.Fatalf("ParseRules(\"\") = %v, %v; want no rules", rs, err)
	}
	for _, bad := range []string{
		"grafana.example.com", "grafana.example.com=", "grafana.example.com=two-factor", "=deny",
		"grafana.example.com:443=deny", "*=deny", "*.=deny", "a.*.example.com=deny", "**.example.com=deny",
		"http://grafana.example.com=deny", "grafana.example.com/=deny", "gráfana.example.com=deny", "grafana.example.com.=deny",
	} {
		if _, err := ParseRules(bad); err == nil {
			t.Errorf("ParseRules(%q) = nil error, want one", bad)
		}
	}
}

func TestPolicyFor(t *testing.T) {
	rs, err := ParseRules("grafana.example.com=two_factor,admin.example.com=deny,*.example.com=one_factor,*.secure.example.com=two_factor,wiki.internal=one_factor")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host    string
		want    Policy
		matched bool
	}{
		{"grafana.example.com", TwoFactor, true},
		{"GRAFANA.example.com:8443", TwoFactor, true},
		{"admin.example.com", Deny, true},
		{"docs.example.com", OneFactor, true},
		{"a.b.example.com", OneFactor, true},
		{"x.secure.example.com", OneFactor, true}, // the earlier wildcard wins
		{"example.com", Deny, false},              // a wildcard does not match the apex
		{"wiki.internal", OneFactor, true},
		{"sub.wiki.internal", Deny, false},
		{"evil.com", Deny, false},
		{"grafana.example.com.", Deny, false},
		{"example.com.evil.com", Deny, false},
		{"grafana.example.com.evil.com", Deny, false},
		{"", Deny, false},
		{"[::1]:80", Deny, false},
	}
	for _, tt := range tests {
		if got, m := rs.PolicyFor(tt.host), rs.Matched(tt.host); got != tt.want || m != tt.matched {
			t.Errorf("PolicyFor(%q) = %q (matched %v), want %q (%v)", tt.host, got, m, tt.want, tt.matched)
		}
	}
	if got := Rules(nil).PolicyFor("grafana.example.com"); got != Deny {
		t.Errorf("no rules: PolicyFor = %q, want deny", got)
	}
}
