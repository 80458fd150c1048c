"""Admin for users (with their role) and the read-only audit log.

API tokens (``ApiToken``): listed with their first characters, deletable (revokes the key);
never added here — a key is shown once, on the profile page or by ``drf_create_token``.
"""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiToken, AuditLog, User
from accounts.roles import Role


class RoleListFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return [(r.value, r.value) for r in Role] + [("none", "no role")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.exclude(groups__name__in=[r.value for r in Role]).filter(is_superuser=False)
        if value:
            return queryset.filter(groups__name=value).distinct()
        return queryset


@admin.register(User)
class Market7UserAdmin(UserAdmin):
    list_display = ("username", "email", "roles", "is_active", "is_staff", "last_login", "date_joined")
    list_filter = (RoleListFilter, "is_active", "is_staff", "is_superuser", "groups")
    fieldsets = UserAdmin.fieldsets + (("Market7", {"fields": ("display_currency",)}),)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="roles")
    def roles(self, obj):
        names = sorted(g.name for g in obj.groups.all())
        if obj.is_superuser:
            names.insert(0, "superuser")
        return ", ".join(names) or "—"


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: entries are written by services, never edited or deleted by hand."""

    list_display = ("time", "user", "action", "object_type", "object_id", "message")
    list_filter = ("action", "object_type")
    search_fields = ("message", "object_id", "user__username")
    date_hierarchy = "time"
    list_select_related = ("user",)
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Only the key's first characters and its SHA-256 are stored; delete to revoke."""

    list_display = ("prefix", "user", "created")
    search_fields = ("user__username", "prefix")
    list_select_related = ("user",)
    readonly_fields = ("user", "prefix", "digest", "created")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
