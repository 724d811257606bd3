package cloud

// Ops is kaizen's identity logic (find-or-create, case-insensitive user
// lookup, role checks, quota end tags) over any [Identity]: the same code
// runs on [Keystone] and on the in-memory fake, so the conformance suite
// checks it on both. Its primitives are those of the embedded Identity.
type Ops struct {
	Identity
}
