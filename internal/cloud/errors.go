package cloud

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gophercloud/gophercloud/v2"
)

// Sentinel errors of the [Identity] operations, whichever implementation
// answers; test with errors.Is.
var (
	// ErrNotFound: the object does not exist (Keystone's 404). ErrNoDomain,
	// ErrNoUser and ErrNoRole are kinds of it.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the name is taken (Keystone's 409), typically because a
	// concurrent run created the object first.
	ErrConflict = errors.New("conflict")
	// ErrForbidden: Keystone refuses the operation (403), e.g. a role
	// implying one its prohibited_implied_role option names (admin).
	ErrForbidden = errors.New("forbidden")
	// ErrInvalid: Keystone refuses the request as malformed (400), e.g. a
	// tag holding "/" or ",".
	ErrInvalid = errors.New("invalid request")
)

// notFound is a sentinel that is also [ErrNotFound].
type notFound string

func (e notFound) Error() string { return string(e) }
func (e notFound) Unwrap() error { return ErrNotFound }

// Sentinel errors of the Ensure and Find operations; test with errors.Is.
var (
	// ErrNoDomain: the domain does not exist and creation was not asked for.
	ErrNoDomain error = notFound("domain does not exist")
	// ErrProjectTaken: a project of that name exists in the domain but was
	// not created for this request (it lacks the request's owner tag).
	ErrProjectTaken = errors.New("project name is taken by another request")
	// ErrNoUser: no user of that name in the domain.
	ErrNoUser error = notFound("user does not exist")
	// ErrAmbiguousUser: several users in the domain match the name when
	// case is ignored, none of them exactly.
	ErrAmbiguousUser = errors.New("user name matches several users ignoring case")
	// ErrNoRole: no global role of that name.
	ErrNoRole error = notFound("role does not exist")
)

// isConflict reports whether Keystone answered 409 Conflict: the name is
// already in use, typically because a concurrent run created it first.
func isConflict(err error) bool {
	return gophercloud.ResponseCodeIs(err, http.StatusConflict)
}

func isNotFound(err error) bool {
	return gophercloud.ResponseCodeIs(err, http.StatusNotFound)
}

// mapErr wraps a gophercloud error with the sentinel its status means
// (404 [ErrNotFound], 409 [ErrConflict], 403 [ErrForbidden], 400
// [ErrInvalid]), keeping the original in the chain
// so gophercloud.ResponseCodeIs still sees it. what says what was tried.
func mapErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case isNotFound(err):
		return fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
	case isConflict(err):
		return fmt.Errorf("%s: %w: %w", what, ErrConflict, err)
	case gophercloud.ResponseCodeIs(err, http.StatusForbidden):
		return fmt.Errorf("%s: %w: %w", what, ErrForbidden, err)
	case gophercloud.ResponseCodeIs(err, http.StatusBadRequest):
		return fmt.Errorf("%s: %w: %w", what, ErrInvalid, err)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}
