// Package prov is hotdesk's domain: sites, users, devices, login sessions,
// reachability, administration and the rules that tie them together. It
// holds no SQL, no sockets, no net/http and no vendor file formats;
// storage is the Store interface declared here and implemented by
// prov/store, and the protocol rooms are wired to it by daemon.
// New builds the services with their collaborators; the rules between them
// (what follows a change, in which order) are in rules.go.
//
// The provisioning file namespace is prov/files, and passwords, lockout
// and throttles are prov/auth. New does not build the namespace: prov may
// not import prov/files (the namespace reads the model), and building it
// here through a factory would hand prov a collaborator it only needs one
// method of. Instead daemon builds the namespace's rendered-files cache
// first and passes it as Deps.FileCache, so the cache-drop rule keeps its
// place in rules.go (before check-sync, so a fast phone never fetches the
// old file), then builds prov/files over the finished Services, which it
// tells of fetches and handset password changes (files.Desk). Nothing is
// set after construction.
package prov
