from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import AuditLog, User


@admin.register(User)
class Market7UserAdmin(UserAdmin):
    list_display = ("username", "email", "is_active", "is_staff", "last_login", "date_joined")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    fieldsets = UserAdmin.fieldsets + (("Market7", {"fields": ("display_currency",)}),)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("time", "user", "action", "object_type", "object_id", "message")
    list_filter = ("action", "object_type")
    search_fields = ("message", "object_id", "user__username")
    date_hierarchy = "time"
    readonly_fields = [f.name for f in AuditLog._meta.fields]
