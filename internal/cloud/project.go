package cloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

const (
	// KaizenTag marks every project kaizen creates.
	KaizenTag = "kaizen"
	// OwnerTagPrefix starts the tag that names the request a project was
	// created for; see [OwnerTag].
	OwnerTagPrefix = "kaizen-request:"
	// MaxTagLen is the tag length kaizen keeps to. Current Keystone accepts
	// 255 characters, older releases and the API-WG tagging guideline 60.
	MaxTagLen = 60
)

// ProjectSpec describes the project one onboarding request wants.
type ProjectSpec struct {
	DomainID    string
	Name        string
	Description string
	// Tags are added to [KaizenTag] and the owner tag on creation. Each must
	// be a valid Keystone tag (no "/" or ",", at most [MaxTagLen] characters).
	Tags []string
	// Owner identifies the request (e.g. the sign-up row's id or the
	// requester's email). It is stored as the tag OwnerTag(Owner), which is
	// what lets a re-run recognise the project as its own. Required.
	Owner string
}

// Project is a Keystone project.
type Project struct {
	ID       string
	Name     string
	DomainID string
	Tags     []string
	Enabled  bool
}

// OwnerTag is the tag that records owner on a project: OwnerTagPrefix+owner
// when owner is short and made of safe characters (letters, digits and
// ".@+_-"); otherwise the safe characters of a prefix of owner, "~" and 16
// hex digits of owner's SHA-256. "~" never occurs in the verbatim form, so
// the two forms cannot collide. The result is at most [MaxTagLen] bytes and
// never contains "/" or "," (which Keystone rejects in tags).
func OwnerTag(owner string) string {
	room := MaxTagLen - len(OwnerTagPrefix)
	if len(owner) <= room && strings.IndexFunc(owner, func(r rune) bool { return !tagSafe(r) }) < 0 {
		return OwnerTagPrefix + owner
	}
	sum := sha256.Sum256([]byte(owner))
	suffix := "~" + hex.EncodeToString(sum[:8])
	var b strings.Builder
	for _, r := range owner {
		if b.Len() >= room-len(suffix) {
			break
		}
		if tagSafe(r) {
			b.WriteRune(r)
		}
	}
	return OwnerTagPrefix + b.String() + suffix
}

func tagSafe(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".@+_-", r)
}

// FindProject returns the project named exactly name in domain domainID,
// with ok false when there is none. One API call.
func FindProject(ctx context.Context, c *gophercloud.ServiceClient, domainID, name string) (p Project, ok bool, err error) {
	return NewKeystone(c).FindProject(ctx, domainID, name)
}

// EnsureProject is [Ops.EnsureProject] on Keystone c.
func EnsureProject(ctx context.Context, c *gophercloud.ServiceClient, spec ProjectSpec) (p Project, created bool, err error) {
	return ops(c).EnsureProject(ctx, spec)
}

// EnsureProject returns the project spec.Name in spec.DomainID, creating it
// with the tags [KaizenTag], OwnerTag(spec.Owner) and spec.Tags when there is
// none. An existing project is reused only when it carries this request's
// owner tag (a re-run after a crash); one without it belongs to someone else
// and is an error wrapping [ErrProjectTaken]. The tags are part of the
// creating POST, so no crash can leave a kaizen project without its owner
// tag. When a concurrent creator wins the race (409 Conflict) the project is
// read again and the same rule applied. Description and extra tags of a
// reused project are left as they are.
//
// API calls: reuse 1 (GET list); create 2 (GET list, POST); lost race 3.
func (o Ops) EnsureProject(ctx context.Context, spec ProjectSpec) (p Project, created bool, err error) {
	if spec.Owner == "" || spec.Name == "" || spec.DomainID == "" {
		return Project{}, false, fmt.Errorf("ensuring project %q in domain %q: name, domain and owner are required", spec.Name, spec.DomainID)
	}
	p, ok, err := o.FindProject(ctx, spec.DomainID, spec.Name)
	if err != nil {
		return Project{}, false, err
	}
	return ensureProject(ctx, o, spec, p, ok)
}

// ensureProject is EnsureProject once the lookup is done: p (when ok) is
// the project of that name found by the caller.
func ensureProject(ctx context.Context, ks projectCreator, spec ProjectSpec, p Project, ok bool) (Project, bool, error) {
	ownerTag := OwnerTag(spec.Owner)
	claim := func(p Project) (Project, error) {
		if !slices.Contains(p.Tags, ownerTag) {
			return Project{}, fmt.Errorf("project %q in domain %q (%s) exists but was not created for request %q (no tag %q): %w",
				spec.Name, spec.DomainID, p.ID, spec.Owner, ownerTag, ErrProjectTaken)
		}
		return p, nil
	}

	if ok {
		p, err := claim(p)
		return p, false, err
	}

	tags := []string{KaizenTag, ownerTag}
	for _, t := range spec.Tags {
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	np, err := ks.CreateProject(ctx, NewProject{
		DomainID:    spec.DomainID,
		Name:        spec.Name,
		Description: spec.Description,
		Tags:        tags,
	})
	if errors.Is(err, ErrConflict) {
		p, ok, err := ks.FindProject(ctx, spec.DomainID, spec.Name)
		if err != nil {
			return Project{}, false, err
		}
		if !ok {
			// E.g. a case-insensitive database collation: "Foo" blocks "foo".
			return Project{}, false, fmt.Errorf("creating project %q in domain %q: Keystone reports a conflict but no project has exactly that name: %w",
				spec.Name, spec.DomainID, ErrProjectTaken)
		}
		p, err = claim(p)
		return p, false, err
	}
	if err != nil {
		return Project{}, false, err
	}
	return np, true, nil
}

type projectCreator interface {
	FindProject(ctx context.Context, domainID, name string) (Project, bool, error)
	CreateProject(ctx context.Context, p NewProject) (Project, error)
}
