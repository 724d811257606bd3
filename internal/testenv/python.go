package testenv

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// debianPython is Debian's interpreter: python3-keystoneauth1 installs into
// its dist-packages, which a python3 earlier in PATH (pyenv) does not see.
const debianPython = "/usr/bin/python3"

// keystoneauthPackage is the Debian package Keystoneauth installs from.
const keystoneauthPackage = "python3-keystoneauth1"

var installKeystoneauth sync.Once

// KeystoneauthPython returns a python3 that imports keystoneauth1 (the
// OpenStack client library MOC's admin scripts use), installing Debian's
// python3-keystoneauth1 with apt-get when it is missing, as
// scripts/dev-keystone does. When it cannot be had the test is skipped,
// or fails under CI=true.
func KeystoneauthPython(t testing.TB) string {
	t.Helper()
	if err := importsKeystoneauth(); err != nil {
		installKeystoneauth.Do(func() { aptInstall(t, keystoneauthPackage) })
	}
	if err := importsKeystoneauth(); err != nil {
		msg := "testenv: " + debianPython + " cannot import keystoneauth1 (" + err.Error() + ") and apt-get did not install " + keystoneauthPackage
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; CI=true, so this fails instead of skipping", msg)
		}
		t.Skipf("%s; to run this test: apt-get install %s", msg, keystoneauthPackage)
	}
	return debianPython
}

func importsKeystoneauth() error {
	out, err := exec.Command(debianPython, "-c", "import keystoneauth1.identity.v3, keystoneauth1.session").CombinedOutput()
	if err != nil {
		return &pythonError{err: err, out: strings.TrimSpace(string(out))}
	}
	return nil
}

type pythonError struct {
	err error
	out string
}

func (e *pythonError) Error() string {
	if e.out == "" {
		return e.err.Error()
	}
	lines := strings.Split(e.out, "\n")
	return e.err.Error() + ": " + lines[len(lines)-1]
}

// aptInstall installs pkg, with an apt-get update and a second try when
// the first fails (a stale package list); its output goes to the test log.
func aptInstall(t testing.TB, pkg string) {
	t.Helper()
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Logf("testenv: no apt-get to install %s", pkg)
		return
	}
	install := func() error {
		cmd := exec.Command("apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=600", "install", "--no-install-recommends", pkg)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		t.Logf("testenv: apt-get install %s: %v\n%s", pkg, err, out)
		return err
	}
	if install() == nil {
		return
	}
	cmd := exec.Command("apt-get", "-q", "update")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("testenv: apt-get update: %v\n%s", err, out)
	}
	_ = install()
}
