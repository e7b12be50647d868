package config

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestMetricsAddrAndRetention(t *testing.T) {
	c, _, err := Load("serve", nil, env(nil), io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "" || c.SecurityLogRetention != 400*24*time.Hour {
		t.Fatalf("defaults: metrics-addr %q, security-log-retention %v; want off and 400d", c.MetricsAddr, c.SecurityLogRetention)
	}
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		metrics   string
		retention time.Duration
	}{
		{"from the environment", nil, map[string]string{"LATCHKEY_METRICS_ADDR": "127.0.0.1:9090", "LATCHKEY_SECURITY_LOG_RETENTION": "30d"},
			"127.0.0.1:9090", 30 * 24 * time.Hour},
		{"flags win", []string{"--metrics-addr", "10.0.0.1:9100", "--security-log-retention", "720h"},
			map[string]string{"LATCHKEY_METRICS_ADDR": "127.0.0.1:9090"}, "10.0.0.1:9100", 720 * time.Hour},
		{"zero keeps rows", []string{"--security-log-retention", "0"}, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load("serve", tt.args, env(tt.env), io.Discard, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.MetricsAddr != tt.metrics || c.SecurityLogRetention != tt.retention {
				t.Fatalf("Load(%q) = metrics %q retention %v, want %q %v", tt.args, c.MetricsAddr, c.SecurityLogRetention, tt.metrics, tt.retention)
			}
		})
	}
	for _, bad := range [][]string{
		{"--metrics-addr", "nope"},
		{"--metrics-addr", "127.0.0.1:8080"}, // the public listener's own address
		{"--security-log-retention", "-5d"},
		{"--security-log-retention", "-1h"},
		{"--security-log-retention", "soon"},
	} {
		if _, _, err := Load("serve", bad, env(nil), io.Discard, nil); err == nil {
			t.Errorf("Load(%q) = nil error, want one", bad)
		} else if !strings.Contains(err.Error(), strings.TrimPrefix(bad[0], "--")) {
			t.Errorf("Load(%q) = %v, want it to name the setting", bad, err)
		}
	}
	c, _, _ = Load("serve", []string{"--metrics-addr", "127.0.0.1:9090"}, env(nil), io.Discard, nil)
	attrs := map[any]any{}
	for i := 0; i+1 < len(c.LogAttrs()); i += 2 {
		attrs[c.LogAttrs()[i]] = c.LogAttrs()[i+1]
	}
	if attrs["metrics_addr"] != "127.0.0.1:9090" || attrs["security_log_retention"] != "400d" {
		t.Errorf("LogAttrs: metrics_addr %v, security_log_retention %v; want 127.0.0.1:9090 and 400d", attrs["metrics_addr"], attrs["security_log_retention"])
	}
}
