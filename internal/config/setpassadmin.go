package config

import (
	"net"
	"strings"
)

// APIURL is where addusers and reminders call setpass's admin API
// (PUT /token, PUT /reset): setpass.admin_url if set; else, with
// setpass.admin_listen set, that address (a wildcard host as loopback,
// https when setpass serves TLS); else setpass.url.
func (s Setpass) APIURL() string {
	if s.AdminURL != "" {
		return s.AdminURL
	}
	if s.AdminListen == "" {
		return s.URL
	}
	host, port, err := net.SplitHostPort(s.AdminListen)
	if err != nil {
		return s.URL // validation reports it
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	if s.TLSCertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(strings.Trim(host, "[]"), port) + "/"
}
