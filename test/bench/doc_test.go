// Package bench holds the benchmarks of Kaizen as a whole: addusers built
// and run as an operator runs it, against the local Keystone and quota
// services, side by side with the openstack CLI (scripts/bench-openstack-cli).
// Benchmarks of one package's own code stay in that package.
package bench
