"""Accounts admin: roles column, role filter, read-only audit log."""

from __future__ import annotations

from accounts.models import AuditLog


def test_user_changelist_shows_roles_and_filters_by_role(client, django_user_model, make_user):
    root = django_user_model.objects.create_superuser("root", password="x-Market7!")
    make_user("alice", "trader")
    make_user("victor", "viewer")
    client.force_login(root)

    html = client.get("/admin/accounts/user/").content.decode()
    assert '<td class="field-roles">trader</td>' in html
    assert '<td class="field-roles">viewer</td>' in html
    assert '<td class="field-roles">superuser</td>' in html

    html = client.get("/admin/accounts/user/?role=viewer").content.decode()
    assert ">victor</a>" in html and ">alice</a>" not in html


def test_auditlog_admin_is_read_only(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="x-Market7!")
    entry = AuditLog.objects.create(user=root, action="token_create", object_type="user", object_id=str(root.pk))
    client.force_login(root)
    assert client.get("/admin/accounts/auditlog/").status_code == 200
    assert client.get("/admin/accounts/auditlog/add/").status_code == 403
    page = client.get(f"/admin/accounts/auditlog/{entry.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/accounts/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditLog.objects.filter(pk=entry.pk).exists()
