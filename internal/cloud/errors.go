package cloud

import (
	"errors"
	"net/http"

	"github.com/gophercloud/gophercloud/v2"
)

// Sentinel errors of the Ensure and Find operations; test with errors.Is.
var (
	// ErrNoDomain: the domain does not exist and creation was not asked for.
	ErrNoDomain = errors.New("domain does not exist")
	// ErrProjectTaken: a project of that name exists in the domain but was
	// not created for this request (it lacks the request's owner tag).
	ErrProjectTaken = errors.New("project name is taken by another request")
	// ErrNoUser: no user of that name in the domain.
	ErrNoUser = errors.New("user does not exist")
	// ErrAmbiguousUser: several users in the domain match the name when
	// case is ignored, none of them exactly.
	ErrAmbiguousUser = errors.New("user name matches several users ignoring case")
	// ErrNoRole: no global role of that name.
	ErrNoRole = errors.New("role does not exist")
)

// isConflict reports whether Keystone answered 409 Conflict: the name is
// already in use, typically because a concurrent run created it first.
func isConflict(err error) bool {
	return gophercloud.ResponseCodeIs(err, http.StatusConflict)
}

func isNotFound(err error) bool {
	return gophercloud.ResponseCodeIs(err, http.StatusNotFound)
}
