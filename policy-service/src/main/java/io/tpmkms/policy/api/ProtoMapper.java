package io.tpmkms.policy.api;

import com.google.protobuf.Timestamp;
import io.tpmkms.policy.engine.Decision;
import io.tpmkms.policy.engine.ResourceRef;
import io.tpmkms.policy.engine.Role;
import io.tpmkms.policy.engine.SubjectRef;
import io.tpmkms.platform.error.ServiceException;
import io.tpmkms.policy.error.PolicyReason;
import io.tpmkms.policy.store.PolicyVersionEntity;
import io.tpmkms.policy.store.RoleBindingEntity;
import io.tpmkms.proto.policy.v1.AuthorizeResponse;
import io.tpmkms.proto.policy.v1.Policy;
import io.tpmkms.proto.policy.v1.Reason;
import io.tpmkms.proto.policy.v1.Resource;
import io.tpmkms.proto.policy.v1.RoleBinding;
import io.tpmkms.proto.policy.v1.Subject;
import java.time.Instant;

/** Messages ↔ domain values of the policy service; checks what it converts (INVALID_ARGUMENT). */
final class ProtoMapper {
  private ProtoMapper() {}

  static ResourceRef resource(Resource r) {
    return ResourceRef.of(r.getNamespace(), r.getKeyName());
  }

  static Resource resource(ResourceRef r) {
    return Resource.newBuilder().setNamespace(r.namespace()).setKeyName(r.keyName()).build();
  }

  static SubjectRef subject(Subject s) {
    return switch (s.getKindCase()) {
      case USER -> SubjectRef.of(SubjectRef.Kind.USER, s.getUser());
      case GROUP -> SubjectRef.of(SubjectRef.Kind.GROUP, s.getGroup());
      case REALM_ROLE -> SubjectRef.of(SubjectRef.Kind.REALM_ROLE, s.getRealmRole());
      case CLIENT_ROLE -> SubjectRef.of(SubjectRef.Kind.CLIENT_ROLE, s.getClientRole());
      case CLIENT -> SubjectRef.of(SubjectRef.Kind.CLIENT, s.getClient());
      case KIND_NOT_SET -> throw ServiceException.invalid(PolicyReason.INVALID_SUBJECT,
          "subject: set one of user, group, realm_role, client_role, client");
    };
  }

  static Subject subject(SubjectRef s) {
    Subject.Builder b = Subject.newBuilder();
    switch (s.kind()) {
      case USER -> b.setUser(s.value());
      case GROUP -> b.setGroup(s.value());
      case REALM_ROLE -> b.setRealmRole(s.value());
      case CLIENT_ROLE -> b.setClientRole(s.value());
      case CLIENT -> b.setClient(s.value());
    }
    return b.build();
  }

  static Role role(io.tpmkms.proto.policy.v1.Role r) {
    return switch (r) {
      case ADMIN -> Role.ADMIN;
      case USER -> Role.USER;
      case DUPLICATOR -> Role.DUPLICATOR;
      case AUDITOR -> Role.AUDITOR;
      case VIEWER -> Role.VIEWER;
      case NODE -> Role.NODE;
      default -> throw ServiceException.invalid(PolicyReason.INVALID_ROLE,
          "role: one of ADMIN, USER, DUPLICATOR, AUDITOR, VIEWER, NODE");
    };
  }

  static io.tpmkms.proto.policy.v1.Role role(Role r) {
    return io.tpmkms.proto.policy.v1.Role.valueOf(r.name());
  }

  static Policy policy(PolicyVersionEntity v) {
    return Policy.newBuilder().setId(v.policyId).setVersion(v.version).setDescription(v.description)
        .setText(v.text).setDeleted(v.deleted).setCreateTime(ts(v.createTime)).setCreatedBy(v.createdBy).build();
  }

  static RoleBinding binding(RoleBindingEntity b) {
    RoleBinding.Builder r = RoleBinding.newBuilder().setId(b.id).setSubject(subject(b.subject()))
        .setRole(role(b.role)).setResource(resource(b.resource())).setDescription(b.description)
        .setCreateTime(ts(b.createTime)).setCreatedBy(b.createdBy).setDeleted(b.deleted);
    if (b.deleteTime != null) r.setDeleteTime(ts(b.deleteTime));
    if (b.deletedBy != null) r.setDeletedBy(b.deletedBy);
    return r.build();
  }

  static AuthorizeResponse decision(Decision d) {
    AuthorizeResponse.Builder b = AuthorizeResponse.newBuilder()
        .setDecision(d.allowed() ? io.tpmkms.proto.policy.v1.Decision.ALLOW : io.tpmkms.proto.policy.v1.Decision.DENY)
        .addAllErrors(d.errors()).setRevision(d.revision());
    for (Decision.Reason r : d.reasons()) {
      b.addReasons(Reason.newBuilder().setKind(switch (r.kind()) {
        case ROLE_BINDING -> Reason.Kind.ROLE_BINDING;
        case POLICY -> Reason.Kind.POLICY;
        case DEFAULT_DENY -> Reason.Kind.DEFAULT_DENY;
      }).setId(r.id()).setVersion(r.version()).setDescription(r.description()));
    }
    return b.build();
  }

  static Timestamp ts(Instant i) {
    return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
  }
}
