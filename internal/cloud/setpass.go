package cloud

import "github.com/gophercloud/gophercloud/v2"

// PasswordAuth is the AuthOptions of a user authenticating by password
// into a project (setpass's reset credential). It re-authenticates by
// itself when its token expires.
func PasswordAuth(identityEndpoint, user, userDomain, password, project, projectDomain string) gophercloud.AuthOptions {
	return gophercloud.AuthOptions{
		IdentityEndpoint: identityEndpoint,
		Username:         user,
		DomainName:       userDomain,
		Password:         password,
		AllowReauth:      true,
		Scope:            &gophercloud.AuthScope{ProjectName: project, DomainName: projectDomain},
	}
}
