package cloud_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"

	"github.com/kaizen-onboard/kaizen/internal/cloud"
	"github.com/kaizen-onboard/kaizen/internal/config"
	"github.com/kaizen-onboard/kaizen/internal/testenv"
)

// TestConnect follows the production path: OS_* variables (or a
// KAIZEN_OPENSTACK_PASSWORD override) → config → gophercloud → Keystone.
func TestConnect(t *testing.T) {
	ks := testenv.Keystone(t)
	t.Setenv("OS_CLOUD", "")
	base := map[string]string{
		"OS_AUTH_URL": ks.AuthURL, "OS_USERNAME": ks.Admin.Username, "OS_PASSWORD": ks.Admin.Password,
		"OS_PROJECT_NAME": ks.Admin.ProjectName, "OS_USER_DOMAIN_NAME": ks.Admin.UserDomainName,
		"OS_PROJECT_DOMAIN_NAME": ks.Admin.ProjectDomainName, "OS_REGION_NAME": "RegionOne",
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr int // HTTP status Keystone answers; 0 for success
	}{
		{"admin from OS_* variables", nil, 0},
		{"password from KAIZEN_OPENSTACK_PASSWORD", map[string]string{"OS_PASSWORD": "wrong", "KAIZEN_OPENSTACK_PASSWORD": ks.Admin.Password}, 0},
		{"wrong password", map[string]string{"OS_PASSWORD": "definitely-wrong-pw"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if v, ok := tt.env[k]; ok {
					return v
				}
				return base[k]
			}
			cfg, err := config.Parse("test", nil, config.Options{Getenv: getenv})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), cfg.OpenStack.Timeout.D)
			defer cancel()
			c, err := cloud.Connect(ctx, cfg.OpenStack)
			if tt.wantErr != 0 {
				if !gophercloud.ResponseCodeIs(err, tt.wantErr) {
					t.Fatalf("want HTTP %d, got %v", tt.wantErr, err)
				}
				if strings.Contains(err.Error(), "definitely-wrong-pw") {
					t.Errorf("error reveals the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The token works for an admin-only call.
			if _, err := domains.Get(ctx, c.Identity, "default").Extract(); err != nil {
				t.Errorf("admin call with the new token: %v", err)
			}
		})
	}
}

func TestConnectCloudsYAML(t *testing.T) {
	ks := testenv.Keystone(t)
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_CLIENT_CONFIG_FILE", "")
	dir := t.TempDir()
	clouds := dir + "/clouds.yaml"
	yaml := "clouds:\n  dev:\n    auth:\n      auth_url: " + ks.AuthURL + "\n      username: " + ks.Admin.Username +
		"\n      project_name: " + ks.Admin.ProjectName + "\n      user_domain_name: " + ks.Admin.UserDomainName +
		"\n      project_domain_name: " + ks.Admin.ProjectDomainName + "\n    region_name: RegionOne\n"
	if err := os.WriteFile(clouds, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// The password is not in clouds.yaml: it comes from the secret file.
	pwFile := dir + "/pw"
	if err := os.WriteFile(pwFile, []byte(ks.Admin.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := "[openstack]\ncloud = \"dev\"\nclouds_file = \"" + clouds + "\"\npassword_file = \"" + pwFile + "\"\n"
	cfg, err := config.Parse("test", []byte(doc), config.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cloud.Connect(t.Context(), cfg.OpenStack)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := domains.Get(t.Context(), c.Identity, "default").Extract(); err != nil {
		t.Errorf("admin call: %v", err)
	}
}
