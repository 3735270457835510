use async_graphql::Enum;
use entity::role::Role as StoredRole;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Role {
    /// Everything, everywhere.
    Admin,
    /// Manages the users of their own organisation.
    OrgAdmin,
    /// Reads their own organisation.
    Lecturer,
    /// Reads their own organisation. The role of a user nobody gave a role.
    Member,
}

impl From<StoredRole> for Role {
    fn from(role: StoredRole) -> Role {
        match role {
            StoredRole::Admin => Role::Admin,
            StoredRole::OrgAdmin => Role::OrgAdmin,
            StoredRole::Lecturer => Role::Lecturer,
            StoredRole::Member => Role::Member,
        }
    }
}

impl From<Role> for StoredRole {
    fn from(role: Role) -> StoredRole {
        match role {
            Role::Admin => StoredRole::Admin,
            Role::OrgAdmin => StoredRole::OrgAdmin,
            Role::Lecturer => StoredRole::Lecturer,
            Role::Member => StoredRole::Member,
        }
    }
}
