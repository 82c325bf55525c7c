// Package prov is hotdesk's domain: sites, users, devices, login sessions,
// uploads and the rules that tie them together. It holds no SQL, no sockets
// and no net/http; storage is the Store interface declared here and
// implemented by prov/store, and the protocol rooms are wired to it by daemon.
// New builds the services with their collaborators; the rules between them
// (what follows a change, in which order) are in rules.go.
package prov
