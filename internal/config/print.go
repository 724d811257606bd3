package config

import (
	"fmt"
	"io"

	"github.com/BurntSushi/toml"
)

// WriteRedacted writes the effective configuration as TOML with every secret
// replaced by "[redacted]", preceded by where each secret came from.
func (c *Config) WriteRedacted(w io.Writer) error {
	src := c.Path
	if src == "" {
		src = "built-in defaults"
	}
	fmt.Fprintf(w, "# effective configuration from %s; secrets redacted\n", src)
	for _, s := range []struct {
		key string
		sec Secret
	}{
		{"openstack.password", c.OpenStack.Password},
		{"setpass.secret_key", c.Setpass.SecretKey},
		{"setpass.reset_password", c.Setpass.ResetPassword},
		{"mail.smtp.password", c.Mail.SMTP.Password},
		{"store.url", c.Store.URL.Secret},
	} {
		state := "not set"
		if s.sec.IsSet() {
			state = "set, from " + s.sec.Source()
		}
		fmt.Fprintf(w, "# %s: %s\n", s.key, state)
	}
	keys := "NOT SET: mail cannot be queued or delivered, nor PINs checked"
	if c.Secrets.IsSet() {
		keys = fmt.Sprintf("%d key(s) set, from %s", len(c.Secrets.Effective()), c.Secrets.Source())
	}
	fmt.Fprintf(w, "# secrets.keys: %s\n", keys)
	fmt.Fprintf(w, "# state store: %s\n", c.Store.URL.String())
	ao, _, _ := c.OpenStack.Auth()
	fmt.Fprintf(w, "# openstack credentials: auth URL %q, user %q, application credential %t\n",
		ao.IdentityEndpoint, ao.Username+ao.UserID, ao.ApplicationCredentialID != "" || ao.ApplicationCredentialName != "")
	fmt.Fprintln(w)
	return toml.NewEncoder(w).Encode(c)
}
